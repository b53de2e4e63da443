//! Which platform a command's stack runs on, and opening that stack: the one place that knows
//! both platforms' [`Stack`] implementations.

use crate::platform::stack::Stack;
use crate::Result;

/// Which platform a command's stack runs on.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Deployment {
    /// This machine (`--platform local`, the default).
    #[default]
    Local,
    /// The kubeconfig's cluster (`--platform kind`).
    Kind(crate::platform::kind::stack::KindOptions),
}

/// The stack of `deployment`: the local one of `cfg`, or a connection to the cluster (its port
/// forwards open while the returned stack lives).
pub fn open(cfg: &crate::StackConfig, deployment: &Deployment) -> Result<Box<dyn Stack>> {
    Ok(match deployment {
        Deployment::Local => Box::new(crate::platform::local::LocalStack::new(cfg.clone())),
        Deployment::Kind(opts) => Box::new(crate::platform::kind::stack::KindStack::connect(cfg, opts.clone())?),
    })
}
