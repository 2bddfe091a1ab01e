//! The memcached side of the store's driver: connecting, writing a batch item by item, and
//! the index from handles to keys. Replay is in `replay`. The task itself (order,
//! reconnection, outage logging, counters) is [`gearbox_store::driver`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_memcached::{AsciiProtocol, Client, Error, ErrorKind, Status};
use bytes::Bytes;
use gearbox_store::driver::Backend;
use gearbox_store::{Batch, StoreError, StoredJob};

use crate::encode::{Keys, Record, MAX_VALUE};
use crate::servers::server_for;
use crate::MemcachedOptions;

/// How many items one pipelined `set` carries.
const SET_CHUNK: usize = 500;

/// One connection per server, in the order of the server list.
pub type Conns = Vec<Client>;

/// Where a stored job is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Its place in the replay order; `None` for a gearmand item without a gearbox record.
    pub seq: Option<u64>,
    /// Its gearmand item's key and the server that holds it, if it has one.
    pub item: Option<(Vec<u8>, usize)>,
}

/// What the driver needs to talk to memcached.
pub struct Memcached {
    pub(crate) options: MemcachedOptions,
    pub(crate) location: String,
    pub(crate) keys: Keys,
    /// Every stored job by handle, as of the last load plus the writes since.
    pub(crate) index: HashMap<Bytes, Entry>,
    /// The handles given to gearmand's items, by key, so that loading again gives the same.
    pub(crate) adopted: HashMap<Vec<u8>, Bytes>,
    /// The number of the next handle given to a gearmand item.
    pub(crate) next_adopted: u64,
    /// The live records' handles by sequence number.
    pub(crate) by_seq: BTreeMap<u64, Bytes>,
    /// The highest sequence number given out or read.
    pub(crate) max_seq: u64,
    /// The value of `<prefix>~gb~low` as last written or read.
    pub(crate) low_written: u64,
}

impl Memcached {
    pub(crate) fn new(options: MemcachedOptions, location: String) -> Self {
        Memcached {
            keys: Keys::new(options.prefix.as_bytes()),
            options,
            location,
            index: HashMap::new(),
            adopted: HashMap::new(),
            next_adopted: 1,
            by_seq: BTreeMap::new(),
            max_seq: 0,
            low_written: 0,
        }
    }

    /// The server that holds `key` (libmemcached's placement).
    pub(crate) fn server(&self, key: &[u8]) -> usize {
        server_for(key, self.options.servers.len())
    }

    /// Connects to server `server`, which must answer `version`.
    pub(crate) async fn connect_to(&self, server: usize) -> Result<Client, StoreError> {
        let address = self.options.servers[server].address();
        let connect = async {
            let mut client = Client::new(format!("tcp://{address}")).await?;
            client.version().await?;
            Ok::<_, Error>(client)
        };
        match tokio::time::timeout(self.options.connect_timeout, connect).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(StoreError::unavailable(&self.location, e)),
            Err(elapsed) => Err(StoreError::unavailable(&self.location, elapsed)),
        }
    }

    /// Runs one memcached operation with the response timeout.
    pub(crate) async fn timed<T>(
        &self,
        op: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.options.response_timeout, op).await {
            Ok(result) => result.map_err(|e| classify(e, &self.location)),
            Err(elapsed) => Err(StoreError::unavailable(&self.location, elapsed)),
        }
    }

    /// [`Memcached::timed`], with memcached's `NOT_FOUND` as `None`.
    pub(crate) async fn timed_found<T>(
        &self,
        op: impl Future<Output = Result<T, Error>>,
    ) -> Result<Option<T>, StoreError> {
        match self.timed(op).await {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::Backend { source, .. }) if not_found(&*source) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes `key` on server `server`; a key that is not there is fine.
    pub(crate) async fn delete(
        &self,
        conns: &mut Conns,
        server: usize,
        key: &[u8],
    ) -> Result<(), StoreError> {
        self.timed_found(conns[server].delete(key)).await.map(drop)
    }

    /// Removes a job: its record and its gearmand item. A handle this store has not
    /// written or loaded is not stored (one gearboxd per prefix): nothing to do.
    async fn remove(&mut self, conns: &mut Conns, handle: &Bytes) -> Result<(), StoreError> {
        let Some(entry) = self.index.remove(handle) else {
            return Ok(());
        };
        if let Some((key, server)) = &entry.item {
            self.delete(conns, *server, key).await?;
        }
        if let Some(seq) = entry.seq {
            let key = self.keys.record(seq);
            let server = self.server(&key);
            self.delete(conns, server, &key).await?;
            self.by_seq.remove(&seq);
        }
        Ok(())
    }

    /// Moves `<prefix>~gb~low` up to the lowest live sequence number, when it has moved:
    /// replay reads records from there.
    async fn raise_low(&mut self, conns: &mut Conns) -> Result<(), StoreError> {
        let low = self
            .by_seq
            .keys()
            .next()
            .copied()
            .unwrap_or(self.max_seq + 1);
        if low <= self.low_written {
            return Ok(());
        }
        let key = &self.keys.low;
        let server = self.server(key);
        let value = low.to_string();
        self.timed(conns[server].set(key, value.as_str(), None, None))
            .await?;
        self.low_written = low;
        Ok(())
    }

    /// Reserves `count` sequence numbers; the first of them.
    async fn reserve(&mut self, conns: &mut Conns, count: u64) -> Result<u64, StoreError> {
        let key = &self.keys.seq;
        let server = self.server(key);
        let last = match self
            .timed_found(conns[server].increment(key, count))
            .await?
        {
            Some(last) => last,
            None => {
                // A new counter, or an evicted one: it starts again past every number
                // given out, so that no record is overwritten.
                let start = self.max_seq.to_string();
                let _ = self
                    .timed(conns[server].add(key, start.as_str(), None, None))
                    .await;
                self.timed(conns[server].increment(key, count)).await?
            }
        };
        self.max_seq = self.max_seq.max(last);
        Ok(last + 1 - count)
    }

    /// Sets `items` (key, value) with `flags` on server `server`, pipelined.
    async fn set_all(
        &self,
        conns: &mut Conns,
        server: usize,
        flags: u32,
        items: &[(&[u8], &[u8])],
    ) -> Result<(), StoreError> {
        for chunk in items.chunks(SET_CHUNK) {
            let mut results = self
                .timed(conns[server].set_multi(chunk, None, Some(flags)))
                .await?;
            for (key, _) in chunk {
                match results.remove(&key) {
                    Some(Ok(())) => {}
                    Some(Err(e)) => return Err(classify(e, &self.location)),
                    None => {
                        return Err(classify(
                            Error::Protocol(Status::Error(ErrorKind::Protocol(None))),
                            &self.location,
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}

/// A job of a batch, checked and ready to write.
struct Write<'a> {
    job: &'a StoredJob,
    item: Option<Vec<u8>>,
}

impl Backend for Memcached {
    const NAME: &'static str = "memcached";
    type Conn = Conns;
    type Control = ();

    /// Connects to every server; each must answer `version`.
    async fn connect(&mut self) -> Result<Conns, StoreError> {
        let mut conns = Vec::with_capacity(self.options.servers.len());
        for server in 0..self.options.servers.len() {
            conns.push(self.connect_to(server).await?);
        }
        Ok(conns)
    }

    fn is_closed(&self, conns: &Conns) -> bool {
        conns.iter().any(Client::is_closed)
    }

    async fn apply(&mut self, conns: &mut Conns, batch: Arc<Batch>) -> Result<(), StoreError> {
        let net = batch.net_effect();
        // Everything is checked before anything is written.
        let mut writes = Vec::with_capacity(net.written.len());
        for &job in &net.written {
            let size = job.handle.len() + job.data.len() + job.function.len() + job.unique.len();
            if size > MAX_VALUE {
                return Err(StoreError::InvalidRow {
                    handle: String::from_utf8_lossy(&job.handle).into_owned(),
                    reason: "the job is larger than memcached's 1 MiB item limit".into(),
                });
            }
            let item = self.keys.gearmand(job);
            writes.push(Write { job, item });
        }
        for handle in &net.removed {
            self.remove(conns, handle).await?;
        }
        let known = |w: &Write| self.index.get(&w.job.handle).and_then(|e| e.seq);
        let new = writes.iter().filter(|w| known(w).is_none()).count() as u64;
        let mut next_seq = if new > 0 {
            self.reserve(conns, new).await?
        } else {
            0
        };
        // A rewrite whose gearmand item changed key loses its old item.
        for w in &writes {
            let old = self.index.get(&w.job.handle).and_then(|e| e.item.clone());
            if let Some((key, server)) = old.filter(|(k, _)| Some(k) != w.item.as_ref()) {
                self.delete(conns, server, &key).await?;
            }
        }
        let mut records = Vec::with_capacity(writes.len());
        let mut entries = Vec::with_capacity(writes.len());
        for w in &writes {
            let seq = self.index.get(&w.job.handle).and_then(|e| e.seq);
            let seq = seq.unwrap_or_else(|| {
                next_seq += 1;
                next_seq - 1
            });
            let record = Record {
                seq,
                job: w.job.clone(),
                inline: w.item.is_none(),
            };
            let key = self.keys.record(seq);
            records.push((self.server(&key), key, record.encode()));
            let item = w.item.clone().map(|k| {
                let s = self.server(&k);
                (k, s)
            });
            entries.push(Entry {
                seq: Some(seq),
                item,
            });
        }
        // gearmand's items first: a record never points at an item not yet written.
        for server in 0..self.options.servers.len() {
            for priority in 0..3u32 {
                let items: Vec<(&[u8], &[u8])> = writes
                    .iter()
                    .zip(&entries)
                    .filter_map(|(w, e)| {
                        let (key, s) = e.item.as_ref()?;
                        let fits = *s == server && w.job.priority.index() as u32 == priority;
                        fits.then_some((&key[..], &w.job.data[..]))
                    })
                    .collect();
                if !items.is_empty() {
                    self.set_all(conns, server, priority, &items).await?;
                }
            }
            let items: Vec<(&[u8], &[u8])> = records
                .iter()
                .filter(|(s, _, _)| *s == server)
                .map(|(_, k, v)| (&k[..], &v[..]))
                .collect();
            if !items.is_empty() {
                self.set_all(conns, server, 0, &items).await?;
            }
        }
        for (w, entry) in writes.iter().zip(entries) {
            if let Some(seq) = entry.seq {
                self.by_seq.insert(seq, w.job.handle.clone());
            }
            self.index.insert(w.job.handle.clone(), entry);
        }
        self.raise_low(conns).await
    }

    async fn load(&mut self, conns: &mut Conns) -> Result<Vec<StoredJob>, StoreError> {
        crate::replay::load(self, conns).await
    }
}

/// Maps a client error to the store error whose message says what to do.
pub(crate) fn classify(e: Error, location: &str) -> StoreError {
    let location = location.to_owned();
    match &e {
        Error::Connect(_) | Error::Io(_) | Error::ConnectionClosed | Error::ParseError(_) => {
            StoreError::Unavailable {
                location,
                source: Arc::new(e),
            }
        }
        // memcached with -M refuses writes when full: say so, not "disk full".
        Error::Protocol(Status::Error(ErrorKind::Server(msg))) if msg.contains("out of memory") => {
            StoreError::Backend {
                location,
                source: Arc::new(crate::MemcachedError::Full(msg.trim().to_owned())),
            }
        }
        _ => StoreError::Backend {
            location,
            source: Arc::new(e),
        },
    }
}

/// Whether the error is memcached's `NOT_FOUND`.
fn not_found(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    matches!(
        e.downcast_ref::<Error>(),
        Some(Error::Protocol(Status::NotFound))
    )
}

/// How long `load` waits for a busy LRU crawler before it gives up.
pub(crate) const CRAWLER_WAIT: Duration = Duration::from_secs(10);
