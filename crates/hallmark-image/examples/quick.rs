use hallmark_core::{Payload, WatermarkKey};
use hallmark_image::{Detector, EmbedParams, ImageMark};
use image::DynamicImage;

fn jpeg(img: &DynamicImage, q: u8) -> DynamicImage {
    let mut out = vec![];
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q)
        .encode_image(&img.to_rgb8())
        .unwrap();
    image::load_from_memory(&out).unwrap()
}

fn main() {
    let key = WatermarkKey::from_bytes([5; 32]);
    let mark = ImageMark::new(&key, EmbedParams::default());
    let det = Detector::new(&key);
    for path in std::env::args().skip(1) {
        let mut img = image::open(&path).unwrap();
        let t = std::time::Instant::now();
        let rep = mark.embed_dynamic(&mut img, Payload(0xdead_beef_0123_4567)).unwrap();
        let te = t.elapsed();
        let (w, h) = (img.width(), img.height());
        let attacks: Vec<(&str, DynamicImage)> = vec![
            ("none", img.clone()),
            ("jpeg50", jpeg(&img, 50)),
            ("jpeg30", jpeg(&img, 30)),
            ("resize0.5", img.resize_exact(w / 2, h / 2, image::imageops::FilterType::Lanczos3)),
            ("resize1.5", img.resize_exact(w * 3 / 2, h * 3 / 2, image::imageops::FilterType::Lanczos3)),
            ("crop25", img.crop_imm(w / 4, h / 4, w / 2, h / 2)),
            ("crop50", img.crop_imm(w * 15 / 100, h * 15 / 100, w * 707 / 1000, h * 707 / 1000)),
            ("flip", img.fliph()),
            ("blur2", img.blur(2.0)),
            ("rot90", img.rotate90()),
        ];
        println!("{path}: psnr {:.2} embed {:?} tile {:.0}", rep.psnr, te, rep.tile_px);
        for (name, a) in attacks {
            let d = det.detect(&a);
            println!(
                "  {name:10} ok={} errs={:?} z={:.1} att={} t={:.0}ms {:?}",
                d.payload == Some(Payload(0xdead_beef_0123_4567)),
                d.bit_errors,
                d.sync_score,
                d.attempts,
                d.millis,
                d.transform.map(|t| (t.tile_period_px as i32, t.rotation_deg as i32, t.flipped))
            );
        }
    }
}
