//! Deterministic randomness for the schedulers, seeded from the evaluation ID.
//!
//! Invariant: a scheduler draws every random choice (node order, dynamic ports) from one
//! [`SeededRng`] made from its evaluation's ID, so the same snapshot and evaluation give the same
//! plan. The generator is SplitMix64: tiny, fast and stable across releases of any crate.

use crate::structs::EvalId;

#[derive(Clone, Debug)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A generator seeded with the FNV-1a hash of the evaluation ID.
    pub fn from_eval_id(eval_id: &EvalId) -> Self {
        Self::from_bytes(eval_id.as_str().as_bytes())
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self { state: hash }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    /// A number in `0..bound` (`bound` > 0), without modulo bias worth speaking of.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for idx in (1..items.len()).rev() {
            let other = self.below(idx as u64 + 1) as usize;
            items.swap(idx, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_eval_id_same_sequence() {
        let eval_id = EvalId::from("3f1c4a52-0000-4000-8000-000000000001");
        let mut first = SeededRng::from_eval_id(&eval_id);
        let mut second = SeededRng::from_eval_id(&eval_id);
        let mut items_first: Vec<u32> = (0..100).collect();
        let mut items_second = items_first.clone();
        first.shuffle(&mut items_first);
        second.shuffle(&mut items_second);
        assert_eq!(items_first, items_second);
        assert_ne!(items_first, (0..100).collect::<Vec<u32>>());
        assert!((0..1000).all(|_| first.below(7) < 7));
    }
}
