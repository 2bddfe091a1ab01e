//! Replay: listing every server's keys (`lru_crawler metadump all`), reading those under the
//! prefix, and putting gearbox's records and gearmand's items back together.

use std::collections::HashMap;
use std::time::Instant;

use async_memcached::{AsciiProtocol, Client, Error, Status};
use bytes::Bytes;
use gearbox_proto::{format_handle, parse_handle};
use gearbox_store::{StoreError, StoredJob};

use crate::backend::{Conns, Entry, Memcached, CRAWLER_WAIT};
use crate::encode::{priority_of_flags, valid_key, KeyKind, Record};

/// How many keys one `get` asks for.
const GET_CHUNK: usize = 100;

/// An item found under the prefix.
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
    let mut records = Vec::new();
    let mut items: HashMap<Vec<u8>, Found> = HashMap::new();
    let mut max_seq = 0;
    for (server, client) in conns.iter_mut().enumerate() {
        let keys = list_keys(store, client).await?;
        for chunk in keys.chunks(GET_CHUNK) {
            let values = store.timed(client.get_multi(chunk)).await?;
            for v in values {
                let data = v.data.unwrap_or_default();
                match store.keys.classify(&v.key) {
                    KeyKind::Record(handle) => match Record::decode(Bytes::from(handle), &data) {
                        Ok(r) => {
                            max_seq = max_seq.max(r.seq);
                            records.push(r);
                        }
                        Err(e) => {
                            tracing::warn!(store = %store.location, error = %e, "skipped")
                        }
                    },
                    KeyKind::Gearmand { .. } => {
                        let found = Found {
                            server,
                            cas: v.cas.unwrap_or(0),
                            flags: v.flags.unwrap_or(0),
                            data,
                        };
                        items.insert(v.key, found);
                    }
                    KeyKind::Other => {}
                }
            }
        }
    }
    records.sort_by_key(|r| r.seq);
    let mut jobs = Vec::with_capacity(records.len() + items.len());
    let mut index = HashMap::with_capacity(jobs.capacity());
    let mut stale = Vec::new();
    for mut r in records {
        let item = if r.inline {
            None
        } else {
            let key = store.keys.gearmand(&r.job);
            match key.as_ref().and_then(|k| items.remove(k)) {
                Some(found) => {
                    r.job.data = Bytes::from(found.data);
                    key.map(|k| (k, found.server))
                }
                None => {
                    // Finished by another server (gearmand), or evicted.
                    stale.push(r.job.handle);
                    continue;
                }
            }
        };
        index.insert(
            r.job.handle.clone(),
            Entry {
                seq: Some(r.seq),
                item,
            },
        );
        jobs.push(r.job);
    }
    adopt(store, items, &mut jobs, &mut index);
    store.index = index;
    for handle in &stale {
        let key = store.keys.record(handle);
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
    raise_counter(store, conns, max_seq).await?;
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
            tracing::warn!(store = %store.location, flags = found.flags, "gearmand item with an unknown priority; replayed at normal priority");
            gearbox_proto::Priority::Normal
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
        index.insert(
            handle,
            Entry {
                seq: None,
                item: Some((key, found.server)),
            },
        );
        jobs.push(job);
    }
}

/// Puts the sequence counter past every record (it may have been evicted).
async fn raise_counter(
    store: &Memcached,
    conns: &mut Conns,
    max_seq: u64,
) -> Result<(), StoreError> {
    let key = &store.keys.seq;
    let server = store.server(key);
    let current = store
        .timed(conns[server].get(key))
        .await?
        .and_then(|v| v.data)
        .and_then(|d| std::str::from_utf8(&d).ok()?.trim().parse::<u64>().ok());
    if current.is_none_or(|c| c < max_seq) {
        let value = max_seq.to_string();
        store
            .timed(conns[server].set(key, value.as_str(), None, None))
            .await?;
    }
    Ok(())
}

/// The keys under the prefix on one server, decoded from the crawler's URL encoding. A busy
/// crawler is asked again for up to [`CRAWLER_WAIT`].
async fn list_keys(store: &Memcached, client: &mut Client) -> Result<Vec<Vec<u8>>, StoreError> {
    let started = Instant::now();
    loop {
        match store.timed(dump(store, client)).await {
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
