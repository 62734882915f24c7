#![forbid(unsafe_code)]
//! relayd's `redirect` on Linux: the kernel forwards (nftables DNAT, conntrack keeps each
//! flow on its host) and hasocks only decides where new flows go. The plan (`plan`) is a pure
//! function of the redirects and their hosts' check verdicts: one nft script, one
//! transaction, that rewrites the `inet hasocks` table's rules and maps. `jhash` is the
//! kernel's hash, so user space knows the bucket the kernel gives each client and the
//! relay's hash modes place clients exactly as the redirect's bucket map does. `states`
//! turns conntrack counts into least-states weights. `apply` runs `nft` and `conntrack`.

pub mod apply;
pub mod jhash;
pub mod plan;
pub mod states;

pub use apply::{ApplyError, Put};
pub use plan::{bucket_input, bucket_of, Host, Listen, Placement, Pool, Redirect, BUCKETS};
