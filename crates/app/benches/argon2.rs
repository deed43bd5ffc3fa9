//! argon2id at the parameters in use (m = 19 MiB, t = 2, p = 1): the `argon2` crate (the
//! implementation before issue #15) against `argon2-rust` (`services::passwords` since), one
//! thread, interleaved hash by hash so both see the same machine; the outputs are compared on
//! every hash.
//!
//! ```sh
//! cargo bench -p mimoto-app --bench argon2     # ARGON2_HASHES (default 40)
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is a failed run

use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::var("ARGON2_HASHES").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let password = b"Sakura-Mochi-2026!";
    let params = argon2::Params::DEFAULT;
    let crate_argon2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params.clone());
    let mut blocks = vec![argon2::Block::default(); params.block_count()];
    let rust_params = argon2_rust::Params::builder()
        .memory(argon2_rust::params::Memory::kib(u64::from(params.m_cost())))
        .passes(params.t_cost())
        .lanes(params.p_cost())
        .build()
        .expect("params");
    let mut hasher =
        argon2_rust::Argon2::new(argon2_rust::Algorithm::Argon2id, argon2_rust::Version::V0x13, rust_params).hasher();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for i in 0..n {
        let salt = [i as u8; 16];
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        let t = Instant::now();
        crate_argon2.hash_password_into_with_memory(password, &salt, &mut a, &mut blocks[..]).expect("argon2");
        before.push(t.elapsed());
        let t = Instant::now();
        hasher.hash_into(password, &salt, &mut b).expect("argon2-rust");
        after.push(t.elapsed());
        assert_eq!(a, b, "outputs differ");
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    let (b, a) = (median(&mut before), median(&mut after));
    println!("argon2id m=19456 KiB, t=2, p=1, {n} hashes each, medians (outputs equal on every hash):");
    println!("  argon2 crate 0.5          {b:6.2} ms/hash");
    println!("  argon2-rust 1.1 ({:?}) {a:6.2} ms/hash  ({:.2}x)", argon2_rust::detected_backend(), b / a);
}
