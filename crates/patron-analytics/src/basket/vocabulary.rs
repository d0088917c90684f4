//! Names and ids as the basket log keeps them: names interned once as dense `u32` ids
//! ([`Vocabulary`]), and member and document ids as numbers or interned text ([`Key`]).

use std::collections::HashMap;

use crate::member::{FastBuildHasher, canonical_number};

/// Names interned as dense `u32` ids, in order of first sight.
#[derive(Debug, Default, Clone)]
pub struct Vocabulary {
    ids: HashMap<Box<str>, u32, FastBuildHasher>,
    names: Vec<Box<str>>,
}

impl Vocabulary {
    /// The id of `name`, added on first sight.
    #[inline]
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        self.insert(name.into())
    }

    fn insert(&mut self, name: Box<str>) -> u32 {
        // More than 4 billion distinct names is not a basket file.
        let id = self.names.len() as u32;
        self.ids.insert(name.clone(), id);
        self.names.push(name);
        id
    }

    /// The id of `name`, if seen.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name of `id` (empty for an unknown id).
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }

    /// Distinct names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when nothing was interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Interns every name of `other`; returns their ids here, indexed by their ids there.
    pub(super) fn absorb(&mut self, other: Vocabulary) -> Vec<u32> {
        let Vocabulary { ids, names } = other;
        drop(ids);
        names
            .into_iter()
            .map(|name| match self.ids.get(&name) {
                Some(&id) => id,
                None => self.insert(name),
            })
            .collect()
    }
}

/// A member or document id as read from a line: a canonical whole number or other text.
/// Text that is a canonical whole number (`"17"`) is the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id<'a> {
    /// Written as a plain whole number.
    Number(u64),
    /// Any other id.
    Text(&'a str),
}

/// An interned id: a number, or text by its index in a [`Vocabulary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Number(u64),
    Text(u32),
}

pub(super) fn key(id: Id<'_>, texts: &mut Vocabulary) -> Key {
    match id {
        Id::Number(n) => Key::Number(n),
        Id::Text(t) => match canonical_number(t.as_bytes()) {
            Some(n) => Key::Number(n),
            None => Key::Text(texts.intern(t)),
        },
    }
}

pub(super) fn translate(key: Key, texts: &[u32]) -> Key {
    match key {
        Key::Number(_) => key,
        Key::Text(i) => Key::Text(texts.get(i as usize).copied().unwrap_or(i)),
    }
}
