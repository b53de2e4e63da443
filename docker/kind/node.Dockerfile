# A kind node, as kind's own base image is made (sigs.k8s.io/kind images/base) but from Debian
# packages: systemd, containerd and runc, the CNI plugins, and kind's files (entrypoint, units).
# The harness assembles the context (kind's files from the kind module, the Kubernetes binaries
# it built) and imports the control plane's images into containerd after this build.
ARG BASE=cdc-chaos/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      systemd dbus \
      conntrack iptables nftables iproute2 ethtool util-linux mount kmod \
      libseccomp2 pigz fuse-overlayfs \
      e2fsprogs \
      bash ca-certificates curl jq procps \
      containerd runc containernetworking-plugins \
    && rm -rf /var/lib/apt/lists/* \
    && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
    && rm -f /lib/systemd/system/multi-user.target.wants/* \
    && rm -f /etc/systemd/system/*.wants/* \
    && rm -f /lib/systemd/system/local-fs.target.wants/* \
    && rm -f /lib/systemd/system/sockets.target.wants/*udev* \
    && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \
    && rm -f /lib/systemd/system/basic.target.wants/* \
    && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
    && ln -sf /usr/lib/systemd/systemd /sbin/init
COPY rootfs/ /
RUN chmod 0755 /usr/local/bin/* /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl /kind /kind/bin /kind/bin/* \
    && ln -sf /usr/bin/containerd /usr/local/bin/containerd \
    && mkdir -p /opt/cni /etc/kubernetes/manifests /etc/cni/net.d \
    && ln -sfn /usr/lib/cni /opt/cni/bin \
    && ctr oci spec | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \
    && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
    && systemctl mask systemd-binfmt.service
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
