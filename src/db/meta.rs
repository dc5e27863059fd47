//! Metric metadata in the Db: each change is logged to the WAL (a Metadata record)
//! and applied once acknowledged, like samples; a seal stores the whole map in the
//! `METADATA` file before the manifest lets the WAL files holding the records go.
//!
//! Invariants:
//! - `metadata_write` is held from a change's WAL submission to its application,
//!   so changes apply in WAL order, and a store taken under it holds every change
//!   logged before it (and possibly later ones, which replay applies again, in order).
//! - The file is stored before the publication that raises the WAL floor, so a
//!   change is always in the file, in a replayed WAL file, or both.

use std::collections::BTreeMap;

use super::{Db, Inner};
use crate::error::Result;
use crate::metadata::{self, MetadataUpdate, MetricMetadata};
use crate::wal::record::encode_metadata_frame;

/// The metadata map and whether the file lags behind it.
#[derive(Default)]
pub(crate) struct MetaState {
    pub map: BTreeMap<String, MetricMetadata>,
    /// Changes applied since open (replayed ones included) ...
    pub changes: u64,
    /// ... and how many of them the `METADATA` file holds.
    pub stored: u64,
}

impl Db {
    /// Records the metadata of metric `name`, replacing what was there (last write
    /// wins). Returns whether anything changed; an unchanged value is not logged again.
    /// The metric need not have series yet.
    pub fn set_metadata(&self, name: &str, m: MetricMetadata) -> Result<bool> {
        Ok(self.update_metadata(&[(name.to_string(), m.into())])? == 1)
    }

    /// Applies field-wise changes to several metrics with one WAL record: each
    /// update replaces only the fields it gives, later entries win over earlier ones.
    /// Every entry is checked before anything is stored; an invalid one fails the
    /// call, naming the metric. Returns how many metrics changed.
    pub fn update_metadata(&self, updates: &[(String, MetadataUpdate)]) -> Result<usize> {
        self.inner.change_metadata(updates.iter().map(|(n, u)| (n.as_str(), Some(u))))
    }

    /// Forgets the metadata of `name`; its series (if any) stay. Returns whether there was any.
    pub fn remove_metadata(&self, name: &str) -> Result<bool> {
        Ok(self.inner.change_metadata(std::iter::once((name, None)))? == 1)
    }

    /// The metadata recorded for metric `name`.
    pub fn metadata(&self, name: &str) -> Option<MetricMetadata> {
        self.inner.metadata.read().map.get(name).cloned()
    }

    /// Every metric's metadata, sorted by name.
    pub fn all_metadata(&self) -> Vec<(String, MetricMetadata)> {
        self.inner.metadata.read().map.iter().map(|(n, m)| (n.clone(), m.clone())).collect()
    }
}

impl Inner {
    /// `None` removes. Logs only the entries that change something.
    fn change_metadata<'a>(
        &self,
        changes: impl Iterator<Item = (&'a str, Option<&'a MetadataUpdate>)>,
    ) -> Result<usize> {
        self.check_writable()?;
        let _one_writer = self.metadata_write.lock();
        // The values after the call, for the names it touches (None: removed).
        let mut after: BTreeMap<&str, Option<MetricMetadata>> = BTreeMap::new();
        {
            let cur = self.metadata.read();
            for (name, update) in changes {
                metadata::validate_name(name)?;
                let next = match update {
                    Some(u) => {
                        let old = after.get(name).cloned().unwrap_or_else(|| cur.map.get(name).cloned());
                        let m = u.apply(old.as_ref());
                        metadata::validate(name, &m)?;
                        Some(m)
                    }
                    None => None,
                };
                after.insert(name, next);
            }
            after.retain(|name, next| cur.map.get(*name) != next.as_ref());
        }
        if after.is_empty() {
            return Ok(0);
        }
        let entries: Vec<(String, Option<MetricMetadata>)> =
            after.into_iter().map(|(n, m)| (n.to_string(), m)).collect();
        let mut frame = Vec::new();
        encode_metadata_frame(&entries, &mut frame);
        let ticket = {
            let _order = self.commit_lock.lock();
            self.check_writable()?;
            self.wal.submit(frame)
        };
        if let Err(e) = ticket.and_then(|t| t.wait()) {
            self.poison(&e);
            return Err(e);
        }
        let n = entries.len();
        let mut st = self.metadata.write();
        for (name, m) in entries {
            apply(&mut st, name, m);
        }
        Ok(n)
    }

    /// Stores the map in `METADATA` if it holds changes the file lacks. Called by the
    /// seal before the publication that lets WAL files go.
    pub(crate) fn store_metadata(&self) -> Result<()> {
        let _no_writer = self.metadata_write.lock();
        let (changes, bytes) = {
            let st = self.metadata.read();
            if st.changes == st.stored {
                return Ok(());
            }
            (st.changes, metadata::encode(&st.map))
        };
        // In memory the map itself is the only copy: there is no WAL to cover.
        if self.storage == super::Storage::Disk {
            crate::fsutil::write_atomic(&self.dir.join(metadata::METADATA_FILE), &bytes)?;
        }
        self.metadata.write().stored = changes;
        Ok(())
    }

    /// Writes the current map into another directory (a backup).
    pub(crate) fn copy_metadata_to(&self, dest: &std::path::Path) -> Result<()> {
        let _no_writer = self.metadata_write.lock();
        let map = self.metadata.read().map.clone();
        metadata::store(dest, &map)
    }
}

/// One logged change, applied to the map (also during replay).
pub(crate) fn apply(st: &mut MetaState, name: String, m: Option<MetricMetadata>) {
    match m {
        Some(m) => {
            st.map.insert(name, m);
        }
        None => {
            st.map.remove(&name);
        }
    }
    st.changes += 1;
}
