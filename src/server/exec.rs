//! Where handlers run engine calls. Engine calls block (a commit under
//! `SyncMode::Always` waits for fsync; a long query scans for seconds), so none
//! may run as plain async code on a runtime worker.
//!
//! - `Writers::run`: ingest (every write protocol, import) goes to a pool of its
//!   own whose threads run `ingest_nice` steps nicer than the server. Ingest comes
//!   in bulk and is retried by its clients; a query is someone waiting. With the
//!   two at the same priority, every wakeup on a query's path (accept, read,
//!   answer) waited behind a parse-and-commit burst for a core. Nicer threads still
//!   get every idle cycle, so ingest slows only while reads want the CPU.
//! - `run_blocking`: other long jobs (export, backup) go to tokio's blocking pool.
//! - `run_read`: reads run in place on the worker that parsed the request, which
//!   tokio first hands its other tasks off (`block_in_place`). Under ingest the
//!   blocking pool's threads are busy, and a hop to a fresh one and back cost a
//!   query 1-4 ms of waiting for a core, against 0.1 ms of work.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};

use super::error::ApiError;

/// The ingest pool: the blocking threads of a runtime that is never driven, each
/// made nicer as it starts. Elastic like tokio's own pool, so commits waiting on
/// a group fsync do not starve other writers.
pub(crate) struct Writers {
    rt: Option<tokio::runtime::Runtime>,
    /// Jobs started and not yet finished, whether or not anyone still awaits them.
    busy: Arc<AtomicUsize>,
}

impl Writers {
    /// A pool whose threads run `nice` steps nicer than the thread that starts
    /// them (0: same priority; capped at the lowest priority, 19).
    pub fn start(nice: u8) -> std::io::Result<Writers> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .thread_name("strata-ingest")
            .on_thread_start(move || lower_priority(nice))
            .build()?;
        Ok(Writers { rt: Some(rt), busy: Arc::default() })
    }

    /// Runs a write on the pool; a panic there becomes a 500, never a crash.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let rt = self.rt.as_ref().ok_or_else(|| ApiError::internal("the ingest pool has stopped"))?;
        let busy = Guard::enter(&self.busy);
        rt.spawn_blocking(move || {
            let _busy = busy;
            f()
        })
        .await
        .map_err(|e| ApiError::internal(format!("ingest task failed: {e}")))?
    }

    /// Writes started and not yet finished (a finished one has published its samples
    /// to the live streams).
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Acquire)
    }

    /// Waits, up to `within`, until no write is running: one whose request was
    /// dropped at the shutdown timeout keeps committing on its thread.
    pub async fn drain(&self, within: Duration) {
        let started = Instant::now();
        while self.busy.load(Ordering::Acquire) > 0 {
            if started.elapsed() >= within {
                log::warn!("{} writes still running after {within:?}", self.busy.load(Ordering::Acquire));
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Counts one job as running until dropped (also when the job panics).
struct Guard(Arc<AtomicUsize>);

impl Guard {
    fn enter(busy: &Arc<AtomicUsize>) -> Guard {
        busy.fetch_add(1, Ordering::AcqRel);
        Guard(busy.clone())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        // `serve` drained the pool before returning, and a runtime must not block
        // while dropped inside another.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Raises the calling thread's nice value by `steps`. Linux nice values are per
/// thread. Failure only costs the priority, so it is logged, not fatal.
#[cfg(target_os = "linux")]
fn lower_priority(steps: u8) {
    use rustix::process::{getpriority_process, setpriority_process};
    if steps == 0 {
        return;
    }
    let me = Some(rustix::thread::gettid());
    let set = getpriority_process(me).and_then(|now| setpriority_process(me, (now + i32::from(steps)).min(19)));
    if let Err(e) = set {
        log::warn!("could not lower the ingest threads' priority: {e}");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_steps: u8) {}

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

    #[cfg(target_os = "linux")]
    fn nice_of_this_thread() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn writers_run_nicer_than_the_server() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        let base = std::thread::spawn(nice_of_this_thread).join().unwrap();
        for steps in [0u8, 3] {
            let pool = Writers::start(steps).unwrap();
            let (nice, name) = rt
                .block_on(pool.run(|| Ok((nice_of_this_thread(), std::thread::current().name().map(str::to_owned)))))
                .unwrap();
            assert_eq!(nice, (base + i32::from(steps)).min(19));
            assert_eq!(name.as_deref(), Some("strata-ingest"));
            let e = rt.block_on(pool.run(|| -> Result<(), ApiError> { panic!("boom") })).unwrap_err();
            assert_eq!(e.status.as_u16(), 500);
            // Dropped inside a runtime, as the server's state is.
            rt.block_on(async move { drop(pool) });
        }
    }

    fn boom() -> Result<u32, ApiError> {
        panic!("boom")
    }

    #[test]
    fn drain_waits_for_writes_whose_requests_were_dropped() {
        use std::sync::atomic::AtomicBool;
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().unwrap();
        let pool = Writers::start(0).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        rt.block_on(async {
            let d = done.clone();
            let write = pool.run(move || {
                std::thread::sleep(Duration::from_millis(300));
                d.store(true, Ordering::Release);
                Ok(())
            });
            // The request goes away while its write runs on.
            assert!(tokio::time::timeout(Duration::from_millis(30), write).await.is_err());
            assert!(!done.load(Ordering::Acquire));
            pool.drain(Duration::from_secs(10)).await;
            assert!(done.load(Ordering::Acquire), "drain returned before the write finished");
            assert_eq!(pool.busy.load(Ordering::Acquire), 0);
        });
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
