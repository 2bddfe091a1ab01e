//! The functions the core knows, each with a small number ([`FnId`]) that jobs and workers'
//! abilities hold instead of the name: finding a job's queue is an index, not a hash of the
//! name, and a job is 28 bytes smaller.

use std::ops::{Index, IndexMut};

use bytes::Bytes;

use super::state::Function;
use super::table::NameMap;

/// A function's number in [`Functions`]; stable while anything holds it (see
/// [`Functions::remove`]).
pub type FnId = u32;

/// Every function by number, and the number of each name.
#[derive(Debug, Default)]
pub struct Functions {
    ids: NameMap<FnId>,
    /// `None` marks a free number (listed in `free`).
    slots: Vec<Option<Function>>,
    free: Vec<FnId>,
}

impl Functions {
    /// The number of the function called `name`, if it exists.
    pub fn id(&self, name: &[u8]) -> Option<FnId> {
        self.ids.get(name).copied()
    }

    /// The number of the function called `name`, creating it (with its own copy of the name,
    /// never a slice of some read buffer) if needed.
    pub fn intern(&mut self, name: &[u8]) -> FnId {
        if let Some(id) = self.id(name) {
            return id;
        }
        let name = Bytes::copy_from_slice(name);
        let f = Function {
            name: name.clone(),
            ..Function::default()
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(f);
                id
            }
            None => {
                self.slots.push(Some(f));
                FnId::try_from(self.slots.len() - 1).expect("fewer than 2^32 functions")
            }
        };
        self.ids.insert(name, id);
        id
    }

    /// The function called `name`.
    pub fn by_name(&self, name: &[u8]) -> Option<&Function> {
        self.id(name).map(|id| &self[id])
    }

    /// Forgets function `id`. The caller makes sure that no job and no worker holds it (its
    /// number is handed out again).
    pub fn remove(&mut self, id: FnId) {
        if let Some(f) = self.slots.get_mut(id as usize).and_then(Option::take) {
            self.ids.remove(&f.name);
            self.free.push(id);
        }
    }

    /// Every function's number, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = FnId> + '_ {
        (0..)
            .zip(&self.slots)
            .filter_map(|(id, f)| f.as_ref().map(|_| id))
    }

    /// Every function, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &Function> {
        self.slots.iter().flatten()
    }

    /// Every function with its number.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (FnId, &Function)> {
        (0..)
            .zip(&self.slots)
            .filter_map(|(id, f)| Some((id, f.as_ref()?)))
    }
}

impl Index<FnId> for Functions {
    type Output = Function;

    fn index(&self, id: FnId) -> &Function {
        self.slots[id as usize]
            .as_ref()
            .expect("a function number in use")
    }
}

impl IndexMut<FnId> for Functions {
    fn index_mut(&mut self, id: FnId) -> &mut Function {
        self.slots[id as usize]
            .as_mut()
            .expect("a function number in use")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_reused_only_after_removal() {
        let mut fs = Functions::default();
        let a = fs.intern(b"a");
        let b = fs.intern(b"b");
        assert_ne!(a, b);
        assert_eq!(fs.intern(b"a"), a);
        assert_eq!(&fs[b].name[..], b"b");
        fs.remove(a);
        assert_eq!(fs.id(b"a"), None);
        assert_eq!(fs.values().count(), 1);
        let c = fs.intern(b"c");
        assert_eq!(c, a, "the freed number is handed out again");
        assert_eq!(fs.by_name(b"c").map(|f| &f.name[..]), Some(&b"c"[..]));
        assert_eq!(fs.id(b"b"), Some(b));
    }
}
