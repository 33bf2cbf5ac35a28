//! A small Aho–Corasick automaton whose tables live in zeroizing memory.
//!
//! Why not the `aho-corasick` crate (which the tests use as an oracle)?
//! Two things the masker needs that it does not offer:
//!
//! - **Minimal hold-back.** A streaming masker may only keep back the bytes
//!   that could still be the start of a match. That is the depth of the
//!   deepest trie node on the current state's failure chain that still has
//!   children ([`Automaton::hold`]); the crate does not expose trie depths.
//! - **Zeroization.** The transition tables spell out every pattern, i.e.
//!   every secret and its encodings. Here every table is a
//!   [`Zeroizing`] vector, allocated once at its final size (no reallocation
//!   leaves stale copies behind) and wiped on drop.
//!
//! Matching is the classic NFA walk: sorted edge lists per node (binary
//! search), a dense 256-entry table for the root, failure links. Amortized
//! O(1) steps per input byte.

use zeroize::Zeroizing;

/// The root state.
pub(crate) const ROOT: usize = 0;
const NONE: usize = usize::MAX;

pub(crate) struct Automaton {
    /// `root_next[b]`: the root's child for byte `b`, or `ROOT`.
    root_next: Zeroizing<Vec<usize>>,
    /// Edges of node `n` are `edge_bytes/edge_targets[edge_start[n]..edge_start[n + 1]]`,
    /// sorted by byte.
    edge_start: Zeroizing<Vec<usize>>,
    edge_bytes: Zeroizing<Vec<u8>>,
    edge_targets: Zeroizing<Vec<usize>>,
    fail: Zeroizing<Vec<usize>>,
    /// Length of the longest pattern that is a suffix of the node's string
    /// (0: none).
    out_len: Zeroizing<Vec<usize>>,
    /// Depth of the deepest node on the failure chain (the node included)
    /// that has children: how many trailing bytes could still begin a match.
    hold: Zeroizing<Vec<usize>>,
    max_len: usize,
    patterns: usize,
}

impl Automaton {
    /// Builds the automaton. Empty patterns are ignored.
    pub(crate) fn new(patterns: &[Zeroizing<Vec<u8>>]) -> Self {
        let total: usize = patterns.iter().map(|p| p.len()).sum();
        let cap = total + 1;

        // Build a trie as sibling lists (kept sorted by byte), in vectors
        // sized up front so that no secret byte is ever left behind in a
        // reallocated buffer.
        let mut first_child = Zeroizing::new(Vec::with_capacity(cap));
        let mut next_sibling = Zeroizing::new(Vec::with_capacity(cap));
        let mut label: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(cap));
        let mut depth = Zeroizing::new(Vec::with_capacity(cap));
        let mut out_len = Zeroizing::new(vec![0usize; cap]);
        first_child.push(NONE);
        next_sibling.push(NONE);
        label.push(0);
        depth.push(0usize);

        let mut max_len = 0;
        let mut count = 0;
        for pattern in patterns.iter().filter(|p| !p.is_empty()) {
            count += 1;
            max_len = max_len.max(pattern.len());
            let mut node = ROOT;
            for &byte in pattern.iter() {
                // Find the child labelled `byte`, or the sibling after which
                // it must be inserted to keep the list sorted.
                let mut prev = NONE;
                let mut cur = first_child[node];
                while cur != NONE && label[cur] < byte {
                    prev = cur;
                    cur = next_sibling[cur];
                }
                if cur != NONE && label[cur] == byte {
                    node = cur;
                    continue;
                }
                let new = label.len();
                label.push(byte);
                let d = depth[node] + 1;
                depth.push(d);
                first_child.push(NONE);
                next_sibling.push(cur);
                if prev == NONE {
                    first_child[node] = new;
                } else {
                    next_sibling[prev] = new;
                }
                node = new;
            }
            out_len[node] = depth[node];
        }
        let nodes = label.len();
        out_len.truncate(nodes);

        // Flatten into CSR form (already sorted).
        let mut edge_start = Zeroizing::new(Vec::with_capacity(nodes + 1));
        let mut edge_bytes = Zeroizing::new(Vec::with_capacity(nodes.saturating_sub(1)));
        let mut edge_targets = Zeroizing::new(Vec::with_capacity(nodes.saturating_sub(1)));
        for node in 0..nodes {
            edge_start.push(edge_bytes.len());
            let mut child = first_child[node];
            while child != NONE {
                edge_bytes.push(label[child]);
                edge_targets.push(child);
                child = next_sibling[child];
            }
        }
        edge_start.push(edge_bytes.len());

        let mut root_next = Zeroizing::new(vec![ROOT; 256]);
        for i in edge_start[ROOT]..edge_start[ROOT + 1] {
            root_next[usize::from(edge_bytes[i])] = edge_targets[i];
        }

        let mut automaton = Automaton {
            root_next,
            edge_start,
            edge_bytes,
            edge_targets,
            fail: Zeroizing::new(vec![ROOT; nodes]),
            out_len,
            hold: Zeroizing::new(vec![0; nodes]),
            max_len,
            patterns: count,
        };

        // Breadth-first: failure links, inherited outputs and hold depths
        // only look at shallower nodes, which are done by then.
        let mut queue = Zeroizing::new(Vec::with_capacity(nodes));
        queue.push(ROOT);
        let mut head = 0;
        while head < queue.len() {
            let node = queue[head];
            head += 1;
            let (lo, hi) = (automaton.edge_start[node], automaton.edge_start[node + 1]);
            automaton.hold[node] = if hi > lo {
                depth[node]
            } else {
                automaton.hold[automaton.fail[node]]
            };
            for i in lo..hi {
                let (byte, child) = (automaton.edge_bytes[i], automaton.edge_targets[i]);
                let fail = if node == ROOT {
                    ROOT
                } else {
                    automaton.step(automaton.fail[node], byte)
                };
                automaton.fail[child] = fail;
                if automaton.out_len[child] == 0 {
                    automaton.out_len[child] = automaton.out_len[fail];
                }
                queue.push(child);
            }
        }
        automaton
    }

    /// The state after reading `byte` in state `state`.
    #[inline]
    pub(crate) fn step(&self, mut state: usize, byte: u8) -> usize {
        loop {
            if state == ROOT {
                return self.root_next[usize::from(byte)];
            }
            let (lo, hi) = (self.edge_start[state], self.edge_start[state + 1]);
            if let Ok(i) = self.edge_bytes[lo..hi].binary_search(&byte) {
                return self.edge_targets[lo + i];
            }
            state = self.fail[state];
        }
    }

    /// Length of the longest pattern ending here (0: none).
    #[inline]
    pub(crate) fn out_len(&self, state: usize) -> usize {
        self.out_len[state]
    }

    /// How many trailing bytes could still be the beginning of a match.
    #[inline]
    pub(crate) fn hold(&self, state: usize) -> usize {
        self.hold[state]
    }

    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }

    pub(crate) fn patterns(&self) -> usize {
        self.patterns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasick, MatchKind};
    use proptest::prelude::*;

    /// All matches, leftmost-longest, non-overlapping, as (start, end).
    fn matches(automaton: &Automaton, text: &[u8]) -> Vec<(usize, usize)> {
        // One-shot version of the streaming rule in `MaskStream`.
        let mut found = Vec::new();
        let mut start = 0;
        'outer: loop {
            let mut state = ROOT;
            let mut best: Option<(usize, usize)> = None;
            let mut pos = start;
            while pos < text.len() {
                state = automaton.step(state, text[pos]);
                pos += 1;
                let len = automaton.out_len(state);
                if len > 0 {
                    let s = pos - len;
                    if best.is_none_or(|(bs, bl)| s < bs || (s == bs && len > bl)) {
                        best = Some((s, len));
                    }
                }
                if let Some((bs, bl)) = best
                    && bs < pos - automaton.hold(state)
                {
                    found.push((bs, bs + bl));
                    start = bs + bl;
                    continue 'outer;
                }
            }
            if let Some((bs, bl)) = best {
                found.push((bs, bs + bl));
                start = bs + bl;
                continue;
            }
            return found;
        }
    }

    fn oracle(patterns: &[Vec<u8>], text: &[u8]) -> Vec<(usize, usize)> {
        let patterns: Vec<&Vec<u8>> = patterns.iter().filter(|p| !p.is_empty()).collect();
        if patterns.is_empty() {
            return Vec::new();
        }
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns)
            .expect("oracle builds");
        ac.find_iter(text).map(|m| (m.start(), m.end())).collect()
    }

    fn build(patterns: &[Vec<u8>]) -> Automaton {
        let z: Vec<Zeroizing<Vec<u8>>> =
            patterns.iter().map(|p| Zeroizing::new(p.clone())).collect();
        Automaton::new(&z)
    }

    #[test]
    fn nested_and_overlapping_patterns_pick_leftmost_longest() {
        let patterns = vec![
            b"bc".to_vec(),
            b"abcde".to_vec(),
            b"cdef".to_vec(),
            b"abc".to_vec(),
        ];
        let a = build(&patterns);
        assert_eq!(matches(&a, b"xabcdx"), vec![(1, 4)]);
        assert_eq!(matches(&a, b"xabcdex"), vec![(1, 6)]);
        assert_eq!(matches(&a, b"xbcdefx"), vec![(1, 3)]);
        assert_eq!(matches(&a, b"xcdefx"), vec![(1, 5)]);
        assert_eq!(a.max_len(), 5);
        assert_eq!(a.patterns(), 4);
    }

    #[test]
    fn hold_is_the_longest_live_prefix() {
        let a = build(&[b"abcd".to_vec(), b"bcx".to_vec()]);
        let mut state = ROOT;
        for &b in b"zab" {
            state = a.step(state, b);
        }
        assert_eq!(a.hold(state), 2);
        state = a.step(state, b'c');
        assert_eq!(a.hold(state), 3);
        state = a.step(state, b'q');
        assert_eq!(a.hold(state), 0);
        assert_eq!(a.out_len(state), 0);
    }

    #[test]
    fn no_patterns_never_match_or_hold() {
        let a = build(&[Vec::new()]);
        let mut state = ROOT;
        for &b in b"anything" {
            state = a.step(state, b);
            assert_eq!((state, a.out_len(state), a.hold(state)), (ROOT, 0, 0));
        }
        assert_eq!(a.patterns(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Small alphabets so that overlaps, nesting and shared prefixes are common.
        #[test]
        fn agrees_with_the_aho_corasick_crate(
            patterns in prop::collection::vec(prop::collection::vec(0u8..4, 0..7), 1..8),
            text in prop::collection::vec(0u8..4, 0..200),
        ) {
            let a = build(&patterns);
            prop_assert_eq!(matches(&a, &text), oracle(&patterns, &text));
        }
    }
}
