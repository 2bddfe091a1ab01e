//! Replays the fuzz target's seed corpus (`fuzz/corpus/decode/`, plus whatever crash inputs were
//! added there) through the same decode loop as the fuzz target, so every input that once
//! broke the decoder stays a regression test without cargo-fuzz or a nightly toolchain.

use std::path::Path;

#[path = "support/decode_loop.rs"]
mod decode_loop;

#[test]
fn fuzz_corpus_decodes_without_panic_and_terminates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/decode");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the fuzz corpus at {}: {e}", dir.display()));
    let mut replayed = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !path.is_file() || hidden {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| decode_loop::exercise(&data));
        assert!(
            outcome.is_ok(),
            "corpus file {} broke the decoder",
            path.display()
        );
        replayed += 1;
    }
    assert!(
        replayed >= 12,
        "expected the seed corpus in {}, found {replayed} files",
        dir.display()
    );
}
