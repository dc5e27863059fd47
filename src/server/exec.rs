//! Where handlers run engine calls. Engine calls block (a commit under
//! `SyncMode::Always` waits for fsync; a long query scans for seconds), so none
//! may run as plain async code on a runtime worker.
//!
//! - `run_blocking`: writes and long jobs (ingest, import, export, backup) go to
//!   tokio's blocking pool.
//! - `run_read`: reads run in place on the worker that parsed the request, which
//!   tokio first hands its other tasks off (`block_in_place`). Under ingest the
//!   blocking pool's threads are busy, and a hop to a fresh one and back cost a
//!   query 1-4 ms of waiting for a core, against 0.1 ms of work.

use std::panic::{catch_unwind, AssertUnwindSafe};

use tokio::runtime::{Handle, RuntimeFlavor};

use super::error::ApiError;

/// Runs engine work on the blocking pool; a panic there becomes a 500, never a crash.
pub(crate) async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?
}

/// Runs a read on the current worker thread, made safe to block first. A
/// single-threaded runtime cannot give its only worker away, so there it falls
/// back to the blocking pool. A panic becomes a 500.
pub(crate) async fn run_read<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if Handle::current().runtime_flavor() != RuntimeFlavor::MultiThread {
        return run_blocking(f).await;
    }
    tokio::task::block_in_place(|| catch_unwind(AssertUnwindSafe(f)))
        .map_err(|p| ApiError::internal(format!("engine task failed: {}", panic_message(&*p))))?
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>().copied().or_else(|| p.downcast_ref::<String>().map(String::as_str)).unwrap_or("panic")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boom() -> Result<u32, ApiError> {
        panic!("boom")
    }

    #[test]
    fn runs_reads_in_place_and_turns_panics_into_500s() {
        for multi in [true, false] {
            let rt = if multi {
                tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap()
            } else {
                tokio::runtime::Builder::new_current_thread().build().unwrap()
            };
            rt.block_on(async {
                // In place on the worker that runs the task, or (single-threaded) on a pool thread.
                let (task, read) = tokio::spawn(async {
                    let task = std::thread::current().id();
                    (task, run_read(|| Ok(std::thread::current().id())).await.unwrap())
                })
                .await
                .unwrap();
                assert_eq!(task == read, multi);
                assert_eq!(run_read(|| Ok(7)).await.unwrap(), 7);
                let e = tokio::spawn(run_read(boom)).await.unwrap().unwrap_err();
                assert_eq!(e.status.as_u16(), 500);
                assert!(e.message.contains("boom"), "{}", e.message);
                assert_eq!(run_blocking(boom).await.unwrap_err().status.as_u16(), 500);
            });
        }
    }
}
