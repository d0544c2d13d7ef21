//! A small pool of spinning worker threads for the single-sequence decode
//! path.
//!
//! A decode step runs about four parallel matrix-vector products per layer
//! (q/k/v, o, gate/up, down), each a fraction of a millisecond. Handing each
//! to rayon costs a futex wake-up and a sleep per worker per region (~120
//! per token). Here the workers spin on an atomic word for a short while
//! after each job (so the next job, microseconds later, starts at once) and
//! park only when no job comes.
//!
//! [`run`] splits `n` tasks over the calling thread and the workers (tasks
//! are claimed one at a time from a shared counter, so a worker that the OS
//! preempts does not hold the others up). When the pool is busy (another
//! thread is inside [`run`]) the job runs on rayon instead; results never
//! depend on which thread ran a task. [`disable`] (the command layer calls it
//! at start for `SWIFT_NO_POOL=1` in the environment) sends every job to
//! rayon (for A/B measurements; spinning only pays when the threads have
//! cores to themselves).

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// One job: the task body, type-erased (a thin pointer to a fat one).
type Job<'a> = &'a (dyn Fn(usize) + Sync);

/// How long an idle worker spins before it parks.
const SPIN: Duration = Duration::from_micros(40);

/// How long [`run`] spins for the workers' last tasks before it parks.
const WAIT_SPIN: Duration = Duration::from_micros(50);

struct Shared {
    /// `generation << 32 | n_tasks << 16 | next_task`: one word, so a claim
    /// (compare-and-swap) can only succeed for the job it read.
    state: AtomicU64,
    /// The current job (`*const Job`), valid while a task of it is unfinished.
    job: AtomicPtr<()>,
    /// Tasks of the current job finished.
    done: AtomicUsize,
    /// A task panicked.
    panicked: AtomicBool,
    /// Per worker: parked (or about to park) and needs an unpark.
    sleeping: Vec<AtomicBool>,
    /// The thread inside [`run`] parked waiting for the last tasks (a
    /// worker holding one was preempted), and who it is.
    caller_sleeping: AtomicBool,
    caller: Mutex<Option<Thread>>,
}

struct Pool {
    shared: Arc<Shared>,
    threads: Vec<Thread>,
    busy: Mutex<()>,
}

const MAX_TASKS: usize = 0xFFFF;

fn unpack(s: u64) -> (u64, usize, usize) {
    (
        s >> 32,
        ((s >> 16) & 0xFFFF) as usize,
        (s & 0xFFFF) as usize,
    )
}

impl Shared {
    /// Claim and run tasks of generation `gen` until none are left.
    fn work(&self, gen: u64) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let (g, n, i) = unpack(s);
            if g != gen || i >= n {
                return;
            }
            match self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    // SAFETY: task `i` of this generation is claimed and not
                    // finished, so `run` is still waiting and the job it
                    // published (before the state, with Release) is alive.
                    let job = unsafe { &*(self.job.load(Ordering::Acquire) as *const Job) };
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(i))).is_err() {
                        self.panicked.store(true, Ordering::Relaxed);
                    }
                    let d = self.done.fetch_add(1, Ordering::SeqCst) + 1;
                    if d == n && self.caller_sleeping.swap(false, Ordering::SeqCst) {
                        if let Some(t) = &*self.caller.lock().unwrap_or_else(|e| e.into_inner()) {
                            t.unpark();
                        }
                    }
                    s = self.state.load(Ordering::Acquire);
                }
                Err(now) => s = now,
            }
        }
    }
}

fn worker(shared: Arc<Shared>, w: usize) {
    let mut seen = shared.state.load(Ordering::Acquire) >> 32;
    loop {
        // Wait for a new generation: spin first, then park.
        let start = Instant::now();
        let mut spins = 0u32;
        let gen = loop {
            let g = shared.state.load(Ordering::Acquire) >> 32;
            if g != seen {
                break g;
            }
            std::hint::spin_loop();
            spins += 1;
            if spins & 63 == 0 && start.elapsed() > SPIN {
                shared.sleeping[w].store(true, Ordering::SeqCst);
                let g = shared.state.load(Ordering::SeqCst) >> 32;
                if g != seen {
                    shared.sleeping[w].store(false, Ordering::Relaxed);
                    break g;
                }
                thread::park();
                shared.sleeping[w].store(false, Ordering::Relaxed);
            }
        };
        seen = gen;
        shared.work(gen);
    }
}

static DISABLED: AtomicBool = AtomicBool::new(false);

/// Send every job to rayon: no pool is started (call before the first
/// [`run`]; a pool already started stays).
pub fn disable() {
    DISABLED.store(true, Ordering::SeqCst);
}

fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = rayon::current_num_threads().saturating_sub(1);
        if n == 0 || DISABLED.load(Ordering::SeqCst) {
            return None;
        }
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleeping: (0..n).map(|_| AtomicBool::new(false)).collect(),
            caller_sleeping: AtomicBool::new(false),
            caller: Mutex::new(None),
        });
        let mut threads = Vec::with_capacity(n);
        for w in 0..n {
            let s = shared.clone();
            let h = thread::Builder::new()
                .name(format!("swift-decode-{w}"))
                .spawn(move || worker(s, w))
                .ok()?;
            threads.push(h.thread().clone());
        }
        Some(Pool {
            shared,
            threads,
            busy: Mutex::new(()),
        })
    })
    .as_ref()
}

/// Threads that [`run`] spreads tasks over (workers plus the caller).
pub fn threads() -> usize {
    pool().map_or(1, |p| p.threads.len() + 1)
}

/// Run `f(0..n)`, each index once, spread over the pool's threads; returns
/// when all have finished. A panic in a task panics here.
pub fn run(n: usize, f: impl Fn(usize) + Sync) {
    if n == 0 {
        return;
    }
    if n == 1 {
        return f(0);
    }
    let Some(p) = pool() else {
        if rayon::current_num_threads() > 1 {
            use rayon::prelude::*;
            return (0..n).into_par_iter().for_each(&f);
        }
        return (0..n).for_each(f);
    };
    let guard = match p.busy.try_lock() {
        Ok(g) => g,
        Err(_) => {
            use rayon::prelude::*;
            return (0..n).into_par_iter().for_each(&f);
        }
    };
    if n > MAX_TASKS {
        drop(guard);
        use rayon::prelude::*;
        return (0..n).into_par_iter().for_each(&f);
    }
    let sh = &*p.shared;
    let job: Job = &f;
    sh.job
        .store(&job as *const Job as *mut (), Ordering::Relaxed);
    sh.done.store(0, Ordering::Relaxed);
    sh.panicked.store(false, Ordering::Relaxed);
    let gen = (sh.state.load(Ordering::Relaxed) >> 32) + 1;
    sh.state
        .store((gen << 32) | ((n as u64) << 16), Ordering::SeqCst);
    for (w, t) in p.threads.iter().enumerate() {
        if sh.sleeping[w].swap(false, Ordering::SeqCst) {
            t.unpark();
        }
    }
    sh.work(gen);
    // Wait for tasks still running on workers: spin briefly, then park (a
    // worker that the OS preempted mid-task gets this core back sooner).
    let start = Instant::now();
    let mut spins = 0u32;
    while sh.done.load(Ordering::Acquire) < n {
        std::hint::spin_loop();
        spins += 1;
        if spins & 63 == 0 && start.elapsed() > WAIT_SPIN {
            *sh.caller.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread::current());
            sh.caller_sleeping.store(true, Ordering::SeqCst);
            while sh.done.load(Ordering::SeqCst) < n {
                thread::park_timeout(Duration::from_millis(1));
            }
            sh.caller_sleeping.store(false, Ordering::SeqCst);
        }
    }
    let panicked = sh.panicked.load(Ordering::Relaxed);
    drop(guard);
    if panicked {
        panic!("a task of the decode thread pool panicked");
    }
}

/// A raw pointer that tasks may share to write disjoint parts of one buffer.
#[derive(Clone, Copy)]
pub struct SyncPtr<T>(pub *mut T);

// SAFETY: users write disjoint ranges only (documented at each use).
unsafe impl<T> Send for SyncPtr<T> {}
unsafe impl<T> Sync for SyncPtr<T> {}

impl<T> SyncPtr<T> {
    /// The slice `[at, at + len)` of the buffer.
    ///
    /// # Safety
    /// The range lies in the buffer and no other live reference overlaps it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, at: usize, len: usize) -> &mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(at), len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once() {
        for n in [0usize, 1, 2, 3, 17, 1000] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..50 {
                run(n, |i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
            }
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 50),
                "n={n}"
            );
        }
    }

    #[test]
    fn concurrent_callers_and_idle_workers() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for k in 0..200 {
                        run(8, |_| {
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                        if k % 50 == 0 {
                            // Let the workers park, then wake them.
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 200 * 8);
    }

    #[test]
    fn disjoint_writes() {
        let mut v = vec![0usize; 64];
        let p = SyncPtr(v.as_mut_ptr());
        run(8, |i| {
            // SAFETY: task i writes [8i, 8i + 8) only.
            let s = unsafe { p.slice(8 * i, 8) };
            s.iter_mut().enumerate().for_each(|(j, x)| *x = 8 * i + j);
        });
        assert!(v.iter().enumerate().all(|(i, &x)| i == x));
    }
}
