//! Every fuzz target over its committed seeds (`fuzz/seeds/TARGET/`) and over every input
//! that once crashed it (`fuzz/regressions/TARGET/`): what a fuzzer found stays fixed, and
//! each target is exercised in seconds on every test run.

use std::path::Path;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut v: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.retain(|p| p.is_file());
    v.sort();
    v
}

#[test]
fn every_target_runs_its_seeds_and_regressions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for (name, harness) in hallmark_fuzz::TARGETS {
        let seeds = inputs(&root.join("seeds").join(name));
        assert!(!seeds.is_empty(), "{name} has no seeds");
        for p in seeds
            .iter()
            .chain(inputs(&root.join("regressions").join(name)).iter())
        {
            let data = std::fs::read(p).expect("readable");
            harness(&data);
        }
    }
}
