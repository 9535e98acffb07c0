//! Embed and detect on the bundled 1080p photo, one core (decode and encode excluded).
//!
//! cargo bench -p hallmark-image --bench image
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use hallmark_core::{Payload, WatermarkKey};
use hallmark_image::{Detector, EmbedParams, ImageMark};

fn photo() -> image::DynamicImage {
    let bytes = include_bytes!("../../../testdata/photos/p06_seeding_1920x1080.jpg");
    image::load_from_memory(bytes).unwrap()
}

fn bench(c: &mut Criterion) {
    let key = WatermarkKey::from_bytes([7; 32]);
    let mark = ImageMark::new(&key, EmbedParams::default());
    let det = Detector::new(&key);
    let img = photo();
    let mut g = c.benchmark_group("image 1920x1080");
    g.sample_size(30);
    g.bench_function("embed", |b| {
        b.iter_batched_ref(
            || img.clone(),
            |i| mark.embed_dynamic(i, Payload(1)).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    let mut marked = img.clone();
    mark.embed_dynamic(&mut marked, Payload(1)).unwrap();
    g.bench_function("detect", |b| b.iter(|| det.detect(&marked)));
    g.bench_function("detect_untouched (read-back)", |b| {
        b.iter(|| det.detect_untouched(&marked))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
