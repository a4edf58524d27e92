//! The switchboard's own test harness is exported (feature `testing`) for the other crates'
//! tests too: `paddock_switchboard::testing`.

pub use paddock_switchboard::testing::*;

/// Runs a test body once per backend.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    };
}
