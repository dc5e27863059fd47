//! Label pairs packed into one shared string: the storage of [`crate::Labels`] and
//! of PromQL's [`crate::promql::Metric`].
//!
//! A label set is kept for every series for the life of a `Db`, so its size is
//! what a million series cost. `(String, String)` pairs take 48 bytes plus two
//! allocations each (about 1.2 KB for a ten-label series); packed, the same set
//! is one allocation of its text plus a few bytes.
//!
//! Layout, all inside one `str`: the pair count, then per pair the name's byte
//! length, the name, the value's byte length, the value. A number is written as
//! base-2^15 digits, one char each, most significant first: the last digit is
//! the char itself (U+0000..U+7FFF), earlier ones are offset by `DIGIT` (and
//! moved past the surrogate gap). So a length below 128 is one byte. Every char
//! is a valid scalar value, so the text is a `str` by construction and reading
//! it needs no UTF-8 check.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Digits are below this; `DIGIT + d` marks a digit that more digits follow.
const DIGIT: u32 = 1 << 15;

/// Sorted label pairs (the caller keeps them sorted by name, names unique, no
/// empty values). Cloning shares the text.
#[derive(Clone)]
pub(crate) struct Pairs(Arc<str>);

impl Pairs {
    /// Packs pairs given in their final order.
    pub(crate) fn new<'a>(pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> Pairs {
        let mut text = String::new();
        pack(&mut text, pairs);
        Pairs(text.into())
    }

    /// A set from the text [`pack`] wrote.
    pub(crate) fn from_packed(text: &str) -> Pairs {
        Pairs(text.into())
    }

    /// The packed text: equal texts are equal sets, so it serves as a hash key.
    pub(crate) fn text(&self) -> &str {
        &self.0
    }

    pub(crate) fn empty() -> Pairs {
        Pairs::new(std::iter::empty())
    }

    pub(crate) fn len(&self) -> usize {
        take_len(&self.0, &mut 0)
    }

    pub(crate) fn iter(&self) -> PairIter<'_> {
        let mut pos = 0;
        let left = take_len(&self.0, &mut pos);
        PairIter { text: &self.0, pos, left }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Appends bytes whose order (as byte strings) is the order of the sets:
    /// each name and value with a 0 byte written as 0, 1 and ended by 0, 0.
    /// Sorting many sets by these keys compares with `memcmp` instead of walking
    /// the packed pairs on every comparison.
    pub(crate) fn sort_key(&self, out: &mut Vec<u8>) {
        for (k, v) in self.iter() {
            for s in [k, v] {
                let mut from = 0;
                for (i, _) in s.bytes().enumerate().filter(|&(_, b)| b == 0) {
                    out.extend_from_slice(&s.as_bytes()[from..=i]);
                    out.push(1);
                    from = i + 1;
                }
                out.extend_from_slice(&s.as_bytes()[from..]);
                out.extend_from_slice(&[0, 0]);
            }
        }
    }

    /// Heap bytes held (the text and the shared count header).
    pub(crate) fn heap_size(&self) -> usize {
        self.0.len() + 16
    }

    /// Where the shared text lives: equal for clones of one set while any is alive.
    pub(crate) fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

/// Appends the packed text of `pairs` to `text` (cleared first), as [`Pairs::text`]
/// holds it: a lookup by borrowed pairs packs them into a reused buffer.
pub(crate) fn pack<'a>(text: &mut String, pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)>) {
    text.clear();
    put_len(text, pairs.len());
    for (k, v) in pairs {
        put_len(text, k.len());
        text.push_str(k);
        put_len(text, v.len());
        text.push_str(v);
    }
}

/// The number of pairs if `text` is laid out as [`pack`] writes it (a count, then
/// that many length-prefixed names and values, and nothing after): text read from
/// a file is checked with this before [`Pairs::from_packed`] trusts it.
pub(crate) fn check_packed(text: &str) -> Option<usize> {
    let mut pos = 0;
    let n = checked_len(text, &mut pos)?;
    for _ in 0..n.checked_mul(2)? {
        let len = checked_len(text, &mut pos)?;
        pos = pos.checked_add(len).filter(|&e| text.is_char_boundary(e))?;
    }
    (pos == text.len()).then_some(n)
}

/// [`take_len`] for text that may be malformed: `None` instead of a wrong number.
fn checked_len(text: &str, pos: &mut usize) -> Option<usize> {
    let mut n = 0usize;
    for ch in text.get(*pos..)?.chars() {
        *pos += ch.len_utf8();
        let c = from_char(ch);
        if c < DIGIT {
            return n.checked_mul(DIGIT as usize)?.checked_add(c as usize);
        }
        n = n.checked_mul(DIGIT as usize)?.checked_add((c - DIGIT) as usize)?;
    }
    None
}

/// Hashes the packed text, so a set and its [`Pairs::text`] hash alike.
impl Hash for Pairs {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// The encoding is one-to-one, so equal texts are equal sets.
impl PartialEq for Pairs {
    fn eq(&self, other: &Pairs) -> bool {
        self.0 == other.0
    }
}

impl Eq for Pairs {}

/// Pair by pair, name then value: the order of sorted `(String, String)` slices.
impl Ord for Pairs {
    fn cmp(&self, other: &Pairs) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return Ordering::Equal;
        }
        self.iter().cmp(other.iter())
    }
}

impl PartialOrd for Pairs {
    fn partial_cmp(&self, other: &Pairs) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Default for Pairs {
    fn default() -> Pairs {
        Pairs::empty()
    }
}

pub(crate) struct PairIter<'a> {
    text: &'a str,
    pos: usize,
    left: usize,
}

impl<'a> Iterator for PairIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let k = take_str(self.text, &mut self.pos);
        let v = take_str(self.text, &mut self.pos);
        Some((k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for PairIter<'_> {}

fn put_len(text: &mut String, mut n: usize) {
    let mut digits = [0u32; 5];
    let mut k = 0;
    loop {
        digits[k] = (n % DIGIT as usize) as u32;
        k += 1;
        n /= DIGIT as usize;
        if n == 0 {
            break;
        }
    }
    // Most significant digit first; every digit but the last is marked as continuing.
    for (i, &d) in digits[..k].iter().enumerate().rev() {
        text.push(to_char(if i == 0 { d } else { DIGIT + d }));
    }
}

/// Final digits are chars U+0000..U+7FFF. Continuing digits, `2^15..2^16`, would
/// cross the surrogate gap at U+D800, so the part from there is shifted past it.
fn to_char(c: u32) -> char {
    let code = if c >= 0xD800 { c + 0x800 } else { c };
    char::from_u32(code).unwrap_or('\0')
}

fn from_char(ch: char) -> u32 {
    let code = ch as u32;
    if code >= 0xE000 {
        code - 0x800
    } else {
        code
    }
}

/// Reads a number at `*pos`. The text was written by `put_len`, so it is well formed.
#[inline]
fn take_len(text: &str, pos: &mut usize) -> usize {
    // A number below 128 is one ASCII byte: every name and most values.
    if let Some(&b) = text.as_bytes().get(*pos).filter(|b| b.is_ascii()) {
        *pos += 1;
        return usize::from(b);
    }
    let mut n = 0usize;
    for ch in text[*pos..].chars() {
        *pos += ch.len_utf8();
        let c = from_char(ch);
        if c < DIGIT {
            return n * DIGIT as usize + c as usize;
        }
        n = n * DIGIT as usize + (c - DIGIT) as usize;
    }
    n
}

fn take_str<'a>(text: &'a str, pos: &mut usize) -> &'a str {
    let len = take_len(text, pos);
    let s = &text[*pos..*pos + len];
    *pos += len;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|&(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn round_trips_any_lengths_and_chars() {
        let long = "x".repeat(70_000);
        let odd = "\u{0}é\u{D7FF}\u{E000}\u{FFFF}\u{10FFFF}";
        let sets: Vec<Vec<(&str, &str)>> = vec![
            vec![],
            vec![("a", "1")],
            vec![("__name__", "cpu"), ("host", odd), ("z", long.as_str())],
            vec![("k", &long[..32_767]), ("l", &long[..32_768]), ("m", &long[..65_536])],
        ];
        for set in &sets {
            let p = Pairs::new(set.iter().copied());
            assert_eq!(p.iter().collect::<Vec<_>>(), *set);
            assert_eq!(p.len(), set.len());
            for (k, v) in set {
                assert_eq!(p.get(k), Some(*v));
            }
            assert_eq!(p.get("nope"), None);
        }
        for n in [0usize, 1, 127, 128, 32_767, 32_768, 55_295, 55_296, 65_535, 1 << 30] {
            let mut s = String::new();
            put_len(&mut s, n);
            s.push('!');
            let mut pos = 0;
            assert_eq!(take_len(&s, &mut pos), n);
            assert_eq!(&s[pos..], "!");
        }
    }

    #[test]
    fn check_packed_accepts_what_pack_writes_and_nothing_cut_or_padded() {
        let long = "y".repeat(40_000);
        let sets: Vec<Vec<(&str, &str)>> =
            vec![vec![], vec![("a", "1")], vec![("__name__", "cpu"), ("host", "é\u{10FFFF}"), ("z", long.as_str())]];
        for set in &sets {
            let p = Pairs::new(set.iter().copied());
            assert_eq!(check_packed(p.text()), Some(set.len()));
            let text = p.text();
            for cut in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
                assert_eq!(check_packed(&text[..cut]), None, "{set:?} cut at {cut}");
            }
            assert_eq!(check_packed(&format!("{text}x")), None);
        }
        // A length pointing into the middle of a char, or past the end.
        assert_eq!(check_packed("\u{1}\u{1}é\u{1}a"), None);
        assert_eq!(check_packed("\u{1}\u{9}ab"), None);
    }

    #[test]
    fn orders_as_owned_pairs_do() {
        let sets = [
            vec![("a", "1")],
            vec![("a", "1"), ("b", "2")],
            vec![("a", "10")],
            vec![("a", "2")],
            vec![("ab", "1")],
            vec![("b", "")],
            vec![],
        ];
        for x in &sets {
            for y in &sets {
                let (px, py) = (Pairs::new(x.iter().copied()), Pairs::new(y.iter().copied()));
                assert_eq!(px.cmp(&py), owned(x).cmp(&owned(y)), "{x:?} vs {y:?}");
                assert_eq!(px == py, x == y);
                assert_eq!(px.text() == py.text(), x == y);
            }
            let mut buf = String::from("left over");
            pack(&mut buf, x.iter().copied());
            assert_eq!(buf, Pairs::new(x.iter().copied()).text());
        }
    }

    fn key(p: &[(String, String)]) -> Vec<u8> {
        let mut out = Vec::new();
        Pairs::new(p.iter().map(|(k, v)| (k.as_str(), v.as_str()))).sort_key(&mut out);
        out
    }

    #[test]
    fn sort_keys_order_as_pairs_do_with_zero_bytes_and_prefixes() {
        let sets = [
            vec![],
            vec![("a", "")],
            vec![("a", "\0")],
            vec![("a", "\0\0")],
            vec![("a", "\0\u{1}")],
            vec![("a", "\u{1}")],
            vec![("a", "x"), ("b", "y")],
            vec![("a", "x\0"), ("b", "y")],
            vec![("a\0", "x")],
            vec![("a", "xy")],
        ];
        for x in &sets {
            for y in &sets {
                assert_eq!(key(&owned(x)).cmp(&key(&owned(y))), owned(x).cmp(&owned(y)), "{x:?} vs {y:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn sort_keys_order_as_owned_pairs(
            x in proptest::collection::vec(("[a\\x00b]{0,3}", "[\\x00\\x01ab]{0,3}"), 0..4),
            y in proptest::collection::vec(("[a\\x00b]{0,3}", "[\\x00\\x01ab]{0,3}"), 0..4),
        ) {
            proptest::prop_assert_eq!(key(&x).cmp(&key(&y)), x.cmp(&y));
        }
    }
}
