//! The HTTP server: accept loop, per-connection hyper service, routing between the admin
//! endpoint, ECS/RAM RPC and OSS, and the shared state they use.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::counters::{CounterSink, Counters};
use crate::ecs::EcsState;
use crate::error::Error;
use crate::faults::{FaultKind, Faults};
use crate::store::Store;

/// Response body type of every handler.
pub type Body = UnsyncBoxBody<Bytes, io::Error>;

/// How long [`Emulator::shutdown`] waits for open connections to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Chunk size when streaming an object out.
pub const READ_CHUNK: usize = 256 * 1024;

/// A handler's way of saying "drop this connection without answering" (the reset fault).
#[derive(Debug)]
pub struct Abort;

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by fault injection")
    }
}

impl std::error::Error for Abort {}

/// State shared by every request.
pub struct Shared {
    /// The normalized configuration.
    pub config: Config,
    faults: RwLock<Faults>,
    fault_calls: [AtomicU64; 3],
    /// Counters.
    pub counters: CounterSink,
    /// Objects and uploads.
    pub store: Store,
    /// ECS images and tasks, RAM.
    pub ecs: EcsState,
}

impl Shared {
    /// Current faults.
    pub fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the faults (already validated) and restarts their call counting.
    pub fn set_faults_pub(&self, f: Faults) {
        self.set_faults(f);
    }

    fn set_faults(&self, f: Faults) {
        *self.faults.write().unwrap_or_else(|e| e.into_inner()) = f;
        for c in &self.fault_calls {
            c.store(0, Ordering::SeqCst);
        }
    }

    /// Takes the next call index of `kind` and says whether it fails; returns the index too.
    pub fn roll(&self, kind: FaultKind) -> (bool, u64) {
        let slot = match kind {
            FaultKind::UploadPartError => 0,
            FaultKind::UploadPartReset => 1,
            FaultKind::TimeSkew => 2,
        };
        let i = self.fault_calls[slot].fetch_add(1, Ordering::SeqCst);
        (self.faults().fires(kind, i), i)
    }
}

/// Paces a body to the configured bandwidth.
pub struct Throttle {
    rate: u64,
    start: Instant,
    bytes: u64,
}

impl Throttle {
    /// `rate` bytes per second; 0 = unlimited.
    pub fn new(rate: u64) -> Self {
        Throttle {
            rate,
            start: Instant::now(),
            bytes: 0,
        }
    }

    /// Accounts `n` bytes and sleeps until they are due.
    pub async fn account(&mut self, n: u64) {
        if self.rate == 0 {
            return;
        }
        self.bytes = self.bytes.saturating_add(n);
        #[allow(clippy::cast_precision_loss)]
        let due = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
        let elapsed = self.start.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// No body.
pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Streams `len` bytes of `file` from `offset`, paced by the bandwidth fault.
pub fn file_body(shared: Arc<Shared>, file: std::fs::File, offset: u64, len: u64) -> Body {
    let rate = shared.faults().bandwidth_bytes_per_sec;
    let state = (
        tokio::fs::File::from_std(file),
        offset,
        len,
        false,
        Throttle::new(rate),
        shared,
    );
    let stream = futures_util::stream::unfold(
        state,
        |(mut f, offset, left, mut seeked, mut throttle, shared)| async move {
            if left == 0 {
                return None;
            }
            if !seeked {
                if let Err(e) = f.seek(io::SeekFrom::Start(offset)).await {
                    return Some((Err(e), (f, offset, 0, true, throttle, shared)));
                }
                seeked = true;
            }
            let want = usize::try_from(left).unwrap_or(READ_CHUNK).min(READ_CHUNK);
            let mut buf = vec![0u8; want];
            match f.read(&mut buf).await {
                Ok(0) => Some((
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "object shrank",
                    )),
                    (f, offset, 0, seeked, throttle, shared),
                )),
                Ok(n) => {
                    buf.truncate(n);
                    let n64 = u64::try_from(n).unwrap_or(0);
                    throttle.account(n64).await;
                    shared.counters.sent(n64);
                    Some((
                        Ok(Frame::data(Bytes::from(buf))),
                        (f, offset, left - n64, seeked, throttle, shared),
                    ))
                }
                Err(e) => Some((Err(e), (f, offset, 0, seeked, throttle, shared))),
            }
        },
    );
    BodyExt::boxed_unsync(StreamBody::new(stream))
}

async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Abort> {
    if req.uri().path().starts_with(crate::admin::PREFIX) {
        return Ok(crate::admin::handle(&shared, peer, req).await);
    }
    let delay = shared.faults().delay_ms;
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if crate::ecs::is_rpc(&req) {
        return Ok(crate::ecs::handle(&shared, req).await);
    }
    crate::oss::api::handle(shared, req).await
}

/// A running emulator. Dropping it without [`Emulator::shutdown`] leaves the server running
/// until the runtime stops.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish()
    }
}

/// Binds the listen address (port 0 allowed), loads state from the data directory, spawns the
/// server on the current tokio runtime and returns at once.
pub async fn start(config: Config) -> Result<Emulator, Error> {
    let config = config.normalized()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let names: Vec<String> = config.buckets.iter().map(|b| b.name.clone()).collect();
    let store = Store::open(&config.data_dir, &names)?;
    let ecs = EcsState::load(&config.data_dir)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let shared = Arc::new(Shared {
        faults: RwLock::new(config.faults.clone()),
        config,
        fault_calls: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        counters: CounterSink::default(),
        store,
        ecs,
    });
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, shared.clone(), rx));
    Ok(Emulator {
        addr,
        shared,
        shutdown: tx,
        task,
    })
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut rx: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(_) => {
                        // Out of file descriptors and the like: back off briefly.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let mut conn_rx = rx.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(shared.clone(), peer, req));
                    // A client that half-closes after its request (shutdown of its
                        // write side) still gets the answer, as from a real server.
                    let conn = http1::Builder::new()
                        .half_close(true)
                        .timer(TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = conn_rx.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
                // Reap finished connections so the set stays small.
                while conns.try_join_next().is_some() {}
            }
            _ = rx.changed() => break,
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        conns.abort_all();
    }
}

impl Emulator {
    /// `http://IP:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The effective configuration (defaults filled in).
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Zeroes the counters.
    pub fn reset_counters(&self) {
        self.shared.counters.reset();
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Replaces the faults and restarts their call counting, so a seed replays from the
    /// start. Rates are clamped to 0..=1 and the delay to [`crate::faults::MAX_DELAY_MS`].
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults.clamped());
    }

    /// Like [`Emulator::set_faults`] but refuses out-of-range values instead of clamping.
    pub fn try_set_faults(&self, faults: Faults) -> Result<(), Error> {
        faults.validate()?;
        self.shared.set_faults(faults);
        Ok(())
    }

    /// Stops accepting, lets open requests finish (up to [`SHUTDOWN_GRACE`]) and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        self.shared.ecs.flush();
    }
}
