//! The HTTP server: accept loop, per-connection hyper service, routing between the admin
//! endpoint, ECS/RAM RPC and OSS, and the shared state they use.

use std::io::{self, Read, Seek};
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
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{AccessKey, Config};
use crate::counters::{CounterSink, Counters};
use crate::ecs::{EcsState, Product};
use crate::error::Error;
use crate::faults::{FaultKind, Faults};
use crate::store::{ObjectData, Store};

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
    /// Credentials issued by STS AssumeRole (with their expiry, Unix seconds); kept in memory.
    pub issued: RwLock<Vec<(AccessKey, u64)>>,
}

impl Shared {
    /// Every credential accepted now: the configured ones and unexpired STS-issued ones.
    pub fn keys(&self) -> Vec<AccessKey> {
        let now = crate::util::unix_now();
        let issued = self.issued.read().unwrap_or_else(|e| e.into_inner());
        self.config
            .access_keys
            .iter()
            .cloned()
            .chain(
                issued
                    .iter()
                    .filter(|(_, exp)| *exp > now)
                    .map(|(k, _)| k.clone()),
            )
            .collect()
    }

    /// Records an STS-issued credential valid until `expiry` (Unix seconds).
    pub fn issue(&self, key: AccessKey, expiry: u64) {
        let now = crate::util::unix_now();
        let mut issued = self.issued.write().unwrap_or_else(|e| e.into_inner());
        issued.retain(|(_, exp)| *exp > now);
        issued.push((key, expiry));
    }

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

/// Streams `len` bytes of the object `data` from `offset`, paced by the bandwidth fault.
pub fn file_body(shared: Arc<Shared>, data: ObjectData, offset: u64, len: u64) -> Body {
    let rate = shared.faults().bandwidth_bytes_per_sec;
    let state = (Some(data), offset, len, Throttle::new(rate), shared);
    let stream = futures_util::stream::unfold(
        state,
        |(data, offset, left, mut throttle, shared)| async move {
            let mut data = data?;
            if left == 0 {
                return None;
            }
            let want = usize::try_from(left).unwrap_or(READ_CHUNK).min(READ_CHUNK);
            // Positional reads of plain files: blocking, so off the async workers.
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; want];
                let r = data
                    .seek(io::SeekFrom::Start(offset))
                    .and_then(|_| data.read(&mut buf));
                (
                    r.map(|n| {
                        buf.truncate(n);
                        buf
                    }),
                    data,
                )
            })
            .await;
            let (read, data) = match read {
                Ok(x) => x,
                Err(e) => {
                    return Some((
                        Err(io::Error::other(e)),
                        (None, offset, 0, throttle, shared),
                    ))
                }
            };
            match read {
                Ok(buf) if buf.is_empty() => Some((
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "object shrank",
                    )),
                    (None, offset, 0, throttle, shared),
                )),
                Ok(buf) => {
                    let n64 = u64::try_from(buf.len()).unwrap_or(0);
                    throttle.account(n64).await;
                    shared.counters.sent(n64);
                    Some((
                        Ok(Frame::data(Bytes::from(buf))),
                        (Some(data), offset + n64, left - n64, throttle, shared),
                    ))
                }
                Err(e) => Some((Err(e), (None, offset, 0, throttle, shared))),
            }
        },
    );
    BodyExt::boxed_unsync(StreamBody::new(stream))
}

/// What one listening port serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listener {
    /// The main endpoint: OSS for every region (the Host may name one), plus ECS/RAM RPC
    /// unless `strict.service_endpoints`.
    Main,
    /// OSS as `oss-<region>.aliyuncs.com` (`region_endpoints`).
    Region(String),
    /// One RPC service alone (`service_endpoints`).
    Service(Product),
}

async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    listener: Arc<Listener>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Abort> {
    if req.uri().path().starts_with(crate::admin::PREFIX) {
        return Ok(crate::admin::handle(&shared, peer, req).await);
    }
    let delay = shared.faults().delay_ms;
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if let Listener::Service(p) = &*listener {
        return Ok(crate::ecs::handle(&shared, req, Some(*p)).await);
    }
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(p) = crate::ecs::service_of_host(host) {
        return Ok(crate::ecs::handle(&shared, req, Some(p)).await);
    }
    // With strict service endpoints an RPC call on an OSS endpoint is served as OSS serves
    // it, which refuses it.
    if !shared.config.strict.service_endpoints && crate::ecs::is_rpc(&req) {
        return Ok(crate::ecs::handle(&shared, req, None).await);
    }
    let region = match &*listener {
        Listener::Region(r) => Some(r.clone()),
        _ => None,
    };
    crate::oss::api::handle(shared, req, region).await
}

/// A running emulator. Dropping it without [`Emulator::shutdown`] leaves the server running
/// until the runtime stops.
pub struct Emulator {
    addr: SocketAddr,
    extra: Vec<(Listener, SocketAddr)>,
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
    // Extra ports: one per region, then ECS, RAM, STS; consecutive after a fixed listen port.
    let mut wanted: Vec<Listener> = Vec::new();
    if config.region_endpoints {
        let mut regions: Vec<String> = config.buckets.iter().map(|b| b.region.clone()).collect();
        regions.sort();
        regions.dedup();
        wanted.extend(regions.into_iter().map(Listener::Region));
    }
    if config.service_endpoints {
        wanted.extend([Product::Ecs, Product::Ram, Product::Sts].map(Listener::Service));
    }
    let mut extra_listeners = Vec::new();
    for (i, what) in wanted.into_iter().enumerate() {
        let port = if config.listen.port() == 0 {
            0
        } else {
            u16::try_from(usize::from(addr.port()) + 1 + i).unwrap_or(0)
        };
        let at = SocketAddr::new(addr.ip(), port);
        let l = TcpListener::bind(at)
            .await
            .map_err(|source| Error::Bind { addr: at, source })?;
        let bound = l
            .local_addr()
            .map_err(|source| Error::Bind { addr: at, source })?;
        extra_listeners.push((what, bound, l));
    }
    let extra: Vec<(Listener, SocketAddr)> = extra_listeners
        .iter()
        .map(|(w, a, _)| (w.clone(), *a))
        .collect();
    let shared = Arc::new(Shared {
        faults: RwLock::new(config.faults.clone()),
        config,
        fault_calls: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        counters: CounterSink::default(),
        store,
        ecs,
        issued: RwLock::new(Vec::new()),
    });
    let (tx, rx) = watch::channel(false);
    let mut loops = vec![accept_loop(
        listener,
        Arc::new(Listener::Main),
        shared.clone(),
        rx.clone(),
    )];
    for (what, _, l) in extra_listeners {
        loops.push(accept_loop(l, Arc::new(what), shared.clone(), rx.clone()));
    }
    let task = tokio::spawn(async move {
        futures_util::future::join_all(loops).await;
    });
    Ok(Emulator {
        addr,
        extra,
        shared,
        shutdown: tx,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    what: Arc<Listener>,
    shared: Arc<Shared>,
    mut rx: watch::Receiver<bool>,
) {
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
                let what = what.clone();
                let mut conn_rx = rx.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(shared.clone(), peer, what.clone(), req));
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

    /// `http://IP:PORT` of the port serving `region` alone (`region_endpoints`).
    pub fn region_endpoint(&self, region: &str) -> Option<String> {
        self.extra.iter().find_map(|(w, a)| match w {
            Listener::Region(r) if r == region => Some(format!("http://{a}")),
            _ => None,
        })
    }

    /// `http://IP:PORT` of the port serving `product` alone (`service_endpoints`).
    pub fn service_endpoint(&self, product: Product) -> Option<String> {
        self.extra.iter().find_map(|(w, a)| match w {
            Listener::Service(p) if *p == product => Some(format!("http://{a}")),
            _ => None,
        })
    }

    /// Every extra port with a label (`oss cn-hangzhou`, `ecs`, `ram`, `sts`), in order.
    pub fn extra_endpoints(&self) -> Vec<(String, String)> {
        self.extra
            .iter()
            .map(|(w, a)| {
                let label = match w {
                    Listener::Main => "main".to_string(),
                    Listener::Region(r) => format!("oss {r}"),
                    Listener::Service(p) => p.ram_namespace().to_string(),
                };
                (label, format!("http://{a}"))
            })
            .collect()
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
