//! Replay: reading gearbox's records by sequence number, their gearmand items by key, and
//! the gearmand items no record claims, found by listing every server's keys
//! (`lru_crawler metadump all`).
//!
//! Records are read by number (from `<prefix>~gb~low` to the counter), not found by listing:
//! memcached's crawler can miss items that its LRU maintainer is moving at the same time
//! (observed with items read moments before), so a listing is only trusted for what cannot
//! be found otherwise: jobs gearmand wrote. One it misses stays in memcached and is replayed
//! at a later start.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use async_memcached::{AsciiProtocol, Client, Error, Status};
use bytes::Bytes;
use gearbox_proto::{format_handle, parse_handle, Priority};
use gearbox_store::{StoreError, StoredJob};

use crate::backend::{Conns, Entry, Memcached, CRAWLER_WAIT};
use crate::encode::{priority_of_flags, valid_key, KeyKind, Record};

/// How many keys one `get` asks for.
const GET_CHUNK: usize = 100;

/// An item read back.
struct Found {
    server: usize,
    cas: u64,
    flags: u32,
    data: Vec<u8>,
}

/// Every stored job: gearbox's records in replay order, then gearmand's items without a
/// record in the order memcached stored them. Records whose gearmand item is gone are
/// deleted.
pub(crate) async fn load(
    store: &mut Memcached,
    conns: &mut Conns,
) -> Result<Vec<StoredJob>, StoreError> {
    let counter = read_number(store, conns, &store.keys.seq).await?;
    let low = read_number(store, conns, &store.keys.low).await?;
    // The listing: gearmand's items, and records past an evicted counter.
    let mut listed_records = BTreeSet::new();
    let mut listed_items = Vec::new();
    for (server, conn) in conns.iter_mut().enumerate() {
        let keys = match list_keys(store, server).await {
            Ok(keys) => keys,
            // A server that refuses to list its keys (`-X`) while it answers otherwise:
            // gearbox's records are still read by number, only jobs written by gearmand
            // are not found.
            Err(e) if store.timed(conn.version()).await.is_ok() => {
                tracing::warn!(
                    store = %store.location,
                    server = %store.options.servers[server],
                    error = %e,
                    "memcached does not list its keys (lru_crawler metadump): jobs queued there by gearmand are not replayed"
                );
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        for key in keys {
            match store.keys.classify(&key) {
                KeyKind::Record(seq) => {
                    listed_records.insert(seq);
                }
                KeyKind::Gearmand { .. } => listed_items.push((server, key)),
                KeyKind::Other => {}
            }
        }
    }
    let low = low.unwrap_or(1).max(1);
    let high = counter
        .unwrap_or(0)
        .max(listed_records.last().copied().unwrap_or(0));
    let seqs: BTreeSet<u64> = (low..=high).chain(listed_records).collect();
    let wanted = seqs.iter().map(|&seq| {
        let key = store.keys.record(seq);
        (store.server(&key), key)
    });
    let found = get_many(store, conns, wanted.collect()).await?;
    let mut records = BTreeMap::new();
    for (key, item) in found {
        let KeyKind::Record(seq) = store.keys.classify(&key) else {
            continue;
        };
        match Record::decode(seq, &item.data) {
            Ok(r) => {
                records.insert(seq, r);
            }
            Err(e) => tracing::warn!(store = %store.location, error = %e, "skipped"),
        }
    }
    // The gearmand items the records point at, read by key.
    let claimed: Vec<(usize, Vec<u8>)> = records
        .values()
        .filter(|r| !r.inline)
        .filter_map(|r| store.keys.gearmand(&r.job))
        .map(|k| (store.server(&k), k))
        .collect();
    let mut items = get_many(store, conns, claimed).await?;

    let mut jobs = Vec::with_capacity(records.len());
    let mut index = HashMap::with_capacity(records.len());
    let mut by_seq = BTreeMap::new();
    let mut stale = Vec::new();
    for (seq, mut r) in records {
        let item = match store.keys.gearmand(&r.job).filter(|_| !r.inline) {
            None => None,
            Some(key) => match items.remove(&key) {
                Some(found) => {
                    r.job.data = Bytes::from(found.data);
                    Some((key, found.server))
                }
                None => {
                    // Finished by another server (gearmand), or evicted.
                    stale.push(seq);
                    continue;
                }
            },
        };
        index.insert(
            r.job.handle.clone(),
            Entry {
                seq: Some(seq),
                item,
            },
        );
        by_seq.insert(seq, r.job.handle.clone());
        jobs.push(r.job);
    }
    // gearmand's own items: listed, not claimed by a record.
    let claimed: HashSet<&Vec<u8>> = index
        .values()
        .filter_map(|e| e.item.as_ref().map(|(k, _)| k))
        .collect();
    let unclaimed: Vec<_> = listed_items
        .into_iter()
        .filter(|(_, key)| !claimed.contains(key))
        .collect();
    let gearmands = get_many(store, conns, unclaimed).await?;
    adopt(store, gearmands, &mut jobs, &mut index);

    store.index = index;
    store.by_seq = by_seq;
    store.max_seq = store.max_seq.max(high);
    store.low_written = low;
    for &seq in &stale {
        let key = store.keys.record(seq);
        let server = store.server(&key);
        store.delete(conns, server, &key).await?;
    }
    if !stale.is_empty() {
        tracing::info!(
            store = %store.location,
            dropped = stale.len(),
            "jobs whose gearmand item is gone (finished by gearmand, or evicted) were dropped"
        );
    }
    raise_counter(store, conns, counter, high).await?;
    Ok(jobs)
}

/// gearmand's items that have no record become jobs with handles of their own, in the order
/// memcached stored them.
fn adopt(
    store: &mut Memcached,
    items: HashMap<Vec<u8>, Found>,
    jobs: &mut Vec<StoredJob>,
    index: &mut HashMap<Bytes, Entry>,
) {
    let prefix = store.options.handle_prefix.as_bytes();
    let highest = jobs
        .iter()
        .filter_map(|j| parse_handle(&j.handle, prefix))
        .max()
        .unwrap_or(0);
    store.next_adopted = store.next_adopted.max(highest.saturating_add(1));
    let mut items: Vec<_> = items.into_iter().collect();
    items.sort_by_key(|(_, f)| f.cas);
    for (key, found) in items {
        let KeyKind::Gearmand { function, unique } = store.keys.classify(&key) else {
            continue;
        };
        let priority = priority_of_flags(found.flags).unwrap_or_else(|| {
            tracing::warn!(
                store = %store.location,
                flags = found.flags,
                "gearmand item with an unknown priority; replayed at normal priority"
            );
            Priority::Normal
        });
        let handle = match store.adopted.get(&key) {
            Some(h) => h.clone(),
            None => {
                let h = format_handle(prefix, store.next_adopted);
                store.next_adopted += 1;
                store.adopted.insert(key.clone(), h.clone());
                h
            }
        };
        let mut job = StoredJob::new(handle.clone(), function, found.data);
        job.unique = Bytes::from(unique);
        job.priority = priority;
        let item = Some((key, found.server));
        index.insert(handle, Entry { seq: None, item });
        jobs.push(job);
    }
}

/// Reads `keys` (each with the server that holds it), in chunks; the items found.
async fn get_many(
    store: &Memcached,
    conns: &mut Conns,
    keys: Vec<(usize, Vec<u8>)>,
) -> Result<HashMap<Vec<u8>, Found>, StoreError> {
    let mut found = HashMap::new();
    for (server, client) in conns.iter_mut().enumerate() {
        let mine: Vec<&Vec<u8>> = keys
            .iter()
            .filter(|(s, _)| *s == server)
            .map(|(_, k)| k)
            .collect();
        for chunk in mine.chunks(GET_CHUNK) {
            // No key found at all is memcached's (and the client's) NOT_FOUND.
            let values = store.timed_found(client.get_multi(chunk)).await?;
            for v in values.unwrap_or_default() {
                let item = Found {
                    server,
                    cas: v.cas.unwrap_or(0),
                    flags: v.flags.unwrap_or(0),
                    data: v.data.unwrap_or_default(),
                };
                found.insert(v.key, item);
            }
        }
    }
    Ok(found)
}

/// A decimal number kept in `key` (the counter, the low mark); `None` if absent.
async fn read_number(
    store: &Memcached,
    conns: &mut Conns,
    key: &[u8],
) -> Result<Option<u64>, StoreError> {
    let server = store.server(key);
    let value = store.timed(conns[server].get(key)).await?;
    Ok(value
        .and_then(|v| v.data)
        .and_then(|d| std::str::from_utf8(&d).ok()?.trim().parse().ok()))
}

/// Puts the sequence counter back past every record when it was evicted or is behind.
async fn raise_counter(
    store: &Memcached,
    conns: &mut Conns,
    counter: Option<u64>,
    high: u64,
) -> Result<(), StoreError> {
    if counter.is_some_and(|c| c >= high) {
        return Ok(());
    }
    let key = &store.keys.seq;
    let server = store.server(key);
    let value = high.to_string();
    store
        .timed(conns[server].set(key, value.as_str(), None, None))
        .await
}

/// The keys under the prefix on server `server`, decoded from the crawler's URL encoding,
/// over a connection of its own (a refused dump closes it). A busy crawler is asked again
/// for up to [`CRAWLER_WAIT`].
async fn list_keys(store: &Memcached, server: usize) -> Result<Vec<Vec<u8>>, StoreError> {
    let started = Instant::now();
    loop {
        let mut client = store.connect_to(server).await?;
        match store.timed(dump(store, &mut client)).await {
            Ok(keys) => return Ok(keys),
            Err(StoreError::Backend { source, .. })
                if busy(&*source) && started.elapsed() < CRAWLER_WAIT =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn dump(store: &Memcached, client: &mut Client) -> Result<Vec<Vec<u8>>, Error> {
    let mut keys = Vec::new();
    let mut iter = client.dump_keys().await?;
    while let Some(entry) = iter.next().await {
        let key: Vec<u8> = percent_encoding::percent_decode(&entry?.key).collect();
        if store.keys.owns(&key) && valid_key(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// Whether the crawler answered `BUSY` (another crawl is running).
fn busy(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    match e.downcast_ref::<Error>() {
        Some(Error::Protocol(Status::Error(kind))) => format!("{kind:?}").contains("BUSY"),
        _ => false,
    }
}
