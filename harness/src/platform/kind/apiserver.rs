//! A real Kubernetes API server on this host, without nodes: `kube-apiserver` (built once from
//! the Go module proxy into the cache's `bin/`) on an `etcd` (Debian's `etcd-server`), both on
//! free loopback ports in a temporary directory. It serves the whole API — discovery,
//! server-side apply, validation, admission, watches, status subresources, label selectors —
//! but runs no controller, scheduler or kubelet: nothing becomes ready, no pod is scheduled, and
//! a deleted namespace stays `Terminating`. The `kube` code paths of [`super::cluster`] and
//! [`super::faults`] are tested against it (`harness/tests/apiserver.rs`).
//!
//! [`provision`] builds `kube-apiserver` as [`super::binaries`] builds every Kubernetes command.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::error::{Error, Result};
use super::binaries;
use crate::platform::process;
use crate::platform::{ensure_dir, write_file};

/// `<cache>/bin/kube-apiserver` at [`binaries::VERSION`], built if missing (the first time: the
/// Go toolchain, the Go module proxy, and about 5 minutes and 1.8 GB of memory on 2 cores).
pub fn provision(cache: &Path) -> Result<PathBuf> {
    Ok(binaries::kubernetes(cache, &["kube-apiserver"])?.remove(0))
}

/// The `etcd` binary: on PATH, or Debian's `etcd-server` installed (as root) if missing.
pub fn etcd(cache: &Path) -> Result<PathBuf> {
    let found = || {
        std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join("etcd")).find(|f| f.is_file()))
            .or_else(|| Some(PathBuf::from("/usr/bin/etcd")).filter(|f| f.is_file()))
    };
    if let Some(etcd) = found() {
        return Ok(etcd);
    }
    let missing = || Error::Missing { what: "etcd (the local API server's store)".into(), remedy: "apt-get install -y --no-install-recommends etcd-server".into() };
    if !crate::config::is_root() {
        return Err(missing());
    }
    crate::platform::provision::apt_install(&cache.join("etcd-install.log"), &["etcd-server"])?;
    found().ok_or_else(missing)
}

/// Free TCP ports on 127.0.0.1, distinct (all bound at once, then released).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind(("127.0.0.1", 0)))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::component(COMPONENT, format!("no free loopback port: {e}")))?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(|e| Error::component(COMPONENT, e.to_string()))).collect()
}

fn random_bytes(n: usize) -> Result<Vec<u8>> {
    use ring::rand::SecureRandom;
    let mut b = vec![0u8; n];
    ring::rand::SystemRandom::new().fill(&mut b).map_err(|_| Error::component(COMPONENT, "no random bytes from the system"))?;
    Ok(b)
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// A fresh P-256 key for signing service account tokens: (private key PKCS#8 PEM, public key
/// SubjectPublicKeyInfo PEM).
fn service_account_key() -> Result<(String, String)> {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let failed = |what: &str| Error::component(COMPONENT, format!("generating the service account key: {what}"));
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).map_err(|_| failed("key generation"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).map_err(|_| failed("reading the key back"))?;
    // SubjectPublicKeyInfo { id-ecPublicKey, prime256v1 } followed by the uncompressed point.
    const SPKI_P256: [u8; 26] =
        [0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00];
    let mut spki = SPKI_P256.to_vec();
    spki.extend_from_slice(pair.public_key().as_ref());
    Ok((pem("PRIVATE KEY", pkcs8.as_ref()), pem("PUBLIC KEY", &spki)))
}

/// Starts tried when a chosen port turns out to be taken.
pub const START_ATTEMPTS: usize = 4;

/// Whether a failed start failed because a port it had found free was bound by then.
fn port_taken(e: &Error) -> bool {
    const IN_USE: &str = "address already in use";
    match e {
        Error::Component { message, tail, .. } => message.contains(IN_USE) || tail.as_deref().is_some_and(|t| t.contains(IN_USE)),
        _ => false,
    }
}

/// The component named in this module's errors.
const COMPONENT: &str = "local API server";

/// A process of the server, its log, and what it is.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// etcd and kube-apiserver, running until dropped. Dropping kills both (SIGKILL) and removes
/// their directory — unless the thread is panicking, when the directory is kept for its logs.
pub struct LocalApiServer {
    dir: PathBuf,
    procs: Vec<Proc>,
    url: String,
    kubeconfig: PathBuf,
}

impl LocalApiServer {
    /// Starts etcd and `kube_apiserver` in a new temporary directory on free loopback ports and
    /// waits until `/readyz` answers, at most `timeout` per attempt. An error carries the failing
    /// process's last log lines.
    ///
    /// A port found free can be taken before the server binds it (any outgoing connection of
    /// this machine draws its local port from the same range), so a start that fails with
    /// "address already in use" is tried again on other ports, up to [`START_ATTEMPTS`] times.
    pub async fn start(kube_apiserver: &Path, etcd: &Path, timeout: Duration) -> Result<LocalApiServer> {
        let mut attempt = 1;
        loop {
            match LocalApiServer::start_once(kube_apiserver, etcd, timeout).await {
                Err(e) if attempt < START_ATTEMPTS && port_taken(&e) => {
                    tracing::warn!("local API server: a port was taken before it was bound, starting again on other ports: {e}");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn start_once(kube_apiserver: &Path, etcd: &Path, timeout: Duration) -> Result<LocalApiServer> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("cdc-chaos-apiserver-{}-{}", std::process::id(), STARTED.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&dir);
        ensure_dir(&dir.join("certs"))?;
        let ports = free_ports(3)?;
        let (client_port, peer_port, secure_port) = (ports[0], ports[1], ports[2]);
        let url = format!("https://127.0.0.1:{secure_port}");
        let token = random_bytes(24)?.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let mut server = LocalApiServer { kubeconfig: dir.join("kubeconfig"), dir: dir.clone(), procs: Vec::new(), url: url.clone() };

        let (private, public) = service_account_key()?;
        write_file(&dir.join("sa.key"), &private)?;
        write_file(&dir.join("sa.pub"), &public)?;
        write_file(&dir.join("tokens.csv"), &format!("{token},cdc-chaos-admin,cdc-chaos-admin,\"system:masters\"\n"))?;
        let ca = dir.join("certs").join("apiserver.crt");
        write_file(
            &server.kubeconfig,
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: cdc-chaos-local\n  cluster:\n    server: {url}\n    certificate-authority: {}\nusers:\n- name: cdc-chaos-admin\n  user:\n    token: {token}\ncontexts:\n- name: cdc-chaos-local\n  context:\n    cluster: cdc-chaos-local\n    user: cdc-chaos-admin\ncurrent-context: cdc-chaos-local\n",
                ca.display()
            ),
        )?;

        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut cmd = Command::new(etcd);
        cmd.arg("--name=cdc-chaos")
            .arg(format!("--data-dir={}", dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=cdc-chaos={peer_url}"));
        server.spawn("etcd", cmd)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let etcd_addr = format!("127.0.0.1:{client_port}");
        while !process::tcp_reachable(&etcd_addr, Duration::from_millis(200)) {
            server.check_alive()?;
            if tokio::time::Instant::now() >= deadline {
                return Err(server.failed(format!("etcd does not listen on {etcd_addr} after {}s", timeout.as_secs()), "etcd"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let mut cmd = Command::new(kube_apiserver);
        cmd.arg(format!("--etcd-servers={etcd_url}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={secure_port}"))
            .arg(format!("--cert-dir={}", dir.join("certs").display()))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-account-key-file={}", dir.join("sa.pub").display()))
            .arg(format!("--service-account-signing-key-file={}", dir.join("sa.key").display()))
            .arg(format!("--token-auth-file={}", dir.join("tokens.csv").display()))
            .arg("--authorization-mode=RBAC")
            .arg("--service-cluster-ip-range=10.96.0.0/16")
            .arg("--profiling=false");
        server.spawn("kube-apiserver", cmd)?;

        // The serving certificate (self-signed, with its CA) is written before the API serves.
        while !ca.is_file() {
            server.check_alive()?;
            if tokio::time::Instant::now() >= deadline {
                return Err(server.failed(format!("no serving certificate {} after {}s", ca.display(), timeout.as_secs()), "kube-apiserver"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let client = server.client().await?;
        loop {
            let request = http::Request::get("/readyz").body(Vec::new()).expect("a valid request");
            let last = match tokio::time::timeout(Duration::from_secs(5), client.request_text(request)).await {
                Ok(Ok(text)) if text.trim() == "ok" => break,
                Ok(Ok(text)) => text,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "/readyz did not answer in 5 s".into(),
            };
            server.check_alive()?;
            if tokio::time::Instant::now() >= deadline {
                return Err(server.failed(format!("{url}/readyz not ok after {}s: {last}", timeout.as_secs()), "kube-apiserver"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(server)
    }

    fn spawn(&mut self, name: &'static str, mut cmd: Command) -> Result<()> {
        let log = self.dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(|e| Error::io(format!("{name}: opening log"), &log, e))?;
        let err = out.try_clone().map_err(|e| Error::io(format!("{name}: opening log"), &log, e))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().map_err(|e| Error::component(COMPONENT, format!("cannot start {:?}: {e}", cmd.get_program())))?;
        self.procs.push(Proc { name, child, log });
        Ok(())
    }

    /// An error about `name`, with the last lines of its log.
    fn failed(&self, message: String, name: &str) -> Error {
        let log = self.procs.iter().find(|p| p.name == name).map(|p| p.log.clone());
        let tail = log.as_deref().and_then(|l| crate::error::log_tail(l, 20));
        Error::Component { component: format!("{COMPONENT} ({name})"), message, log, tail }
    }

    /// An error if a process has exited.
    fn check_alive(&mut self) -> Result<()> {
        let mut exited = None;
        for p in &mut self.procs {
            if let Ok(Some(status)) = p.child.try_wait() {
                exited = Some((p.name, status));
                break;
            }
        }
        match exited {
            Some((name, status)) => Err(self.failed(format!("{name} exited ({status})"), name)),
            None => Ok(()),
        }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig of the server (its CA, a `system:masters` token), for `kube` or `kubectl`.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The directory of its data, certificates and logs (`etcd.log`, `kube-apiserver.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A client of the server, configured from [`Self::kubeconfig`].
    pub async fn client(&self) -> Result<kube::Client> {
        let failed = |e: String| Error::component(COMPONENT, format!("a client of {}: {e}", self.url));
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).map_err(|e| failed(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.map_err(|e| failed(e.to_string()))?;
        kube::Client::try_from(config).map_err(|e| failed(e.to_string()))
    }
}

impl Drop for LocalApiServer {
    fn drop(&mut self) {
        for p in self.procs.iter_mut().rev() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{COMPONENT}: kept {} (logs: etcd.log, kube-apiserver.log)", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_account_key_is_pem() {
        let (private, public) = service_account_key().unwrap();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n") && private.ends_with("-----END PRIVATE KEY-----\n"), "{private}");
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"), "{public}");
    }

    #[test]
    fn a_port_taken_before_the_bind_is_told_from_other_failures() {
        let exited = |tail: &str| Error::Component {
            component: format!("{COMPONENT} (kube-apiserver)"),
            message: "kube-apiserver exited (exit status: 1)".into(),
            log: Some("/tmp/kube-apiserver.log".into()),
            tail: Some(tail.into()),
        };
        // As kube-apiserver v1.34.4 and etcd 3.4 say it.
        assert!(port_taken(&exited(
            r#"E1129 10:41:02.982304   28306 run.go:72] "command failed" err="failed to create listener: failed to listen on 127.0.0.1:33855: listen tcp 127.0.0.1:33855: bind: address already in use""#
        )));
        assert!(port_taken(&exited("listen tcp 127.0.0.1:40123: bind: address already in use")));
        assert!(!port_taken(&exited(r#"err="error creating self-signed certificates: permission denied""#)));
        assert!(!port_taken(&Error::Usage("address already in use".into())), "only a component's failure to start");
    }
}
