use super::*;

fn jpeg_with_metadata(
    q: u8,
    sampling: jpeg_encoder::SamplingFactor,
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let img = image::RgbImage::from_fn(96, 64, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 3) as u8, 128])
    });
    let icc = b"fake-icc-profile-bytes-for-testing".repeat(4);
    // A minimal big-endian TIFF header with one IFD entry (Orientation = 6).
    let exif: Vec<u8> = vec![
        b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0,
    ];
    let mut out = vec![];
    let mut enc = jpeg_encoder::Encoder::new(&mut out, q);
    enc.set_sampling_factor(sampling);
    enc.add_icc_profile(&icc).expect("icc");
    enc.add_exif_metadata(&exif).expect("exif");
    enc.encode(img.as_raw(), 96, 64, jpeg_encoder::ColorType::Rgb)
        .expect("encode");
    (out, icc, exif)
}

#[test]
fn jpeg_quality_subsampling_icc_and_exif_survive_a_round_trip() {
    for (q, sampling, want) in [
        (85u8, jpeg_encoder::SamplingFactor::F_2_2, Subsampling::S420),
        (60, jpeg_encoder::SamplingFactor::F_1_1, Subsampling::S444),
    ] {
        let (bytes, icc, exif) = jpeg_with_metadata(q, sampling);
        let d = decode(&bytes, &Limits::default()).expect("decodes");
        let est = d.jpeg_quality.expect("quality");
        assert!(
            (i32::from(est) - i32::from(q)).abs() <= 1,
            "estimated {est} for {q}"
        );
        assert_eq!(d.jpeg_subsampling, Some(want));
        assert_eq!(d.icc.as_deref(), Some(&icc[..]));
        let got_exif = d.exif.clone().expect("exif");
        assert!(
            got_exif.ends_with(&exif) || got_exif == exif,
            "{got_exif:?}"
        );
        let re = encode(&d.image, &d, EncodeOptions::default()).expect("encodes");
        let d2 = decode(&re, &Limits::default()).expect("decodes again");
        assert_eq!(d2.jpeg_quality, d.jpeg_quality, "quality kept");
        assert_eq!(d2.jpeg_subsampling, Some(want));
        assert_eq!(d2.icc.as_deref(), Some(&icc[..]));
        assert!(d2.exif.expect("exif kept").ends_with(&exif));
    }
}

#[test]
fn png_keeps_icc_and_exif() {
    let (jpg, icc, exif) = jpeg_with_metadata(90, jpeg_encoder::SamplingFactor::F_1_1);
    let mut d = decode(&jpg, &Limits::default()).expect("decodes");
    d.format = Format::Png;
    let png = encode(&d.image, &d, EncodeOptions::default()).expect("png");
    let d2 = decode(&png, &Limits::default()).expect("decodes");
    assert_eq!(d2.format, Format::Png);
    assert_eq!(d2.icc.as_deref(), Some(&icc[..]));
    assert!(d2.exif.expect("exif").ends_with(&exif));
}

#[test]
fn limits_refuse_large_images_before_decoding() {
    let (jpg, _, _) = jpeg_with_metadata(90, jpeg_encoder::SamplingFactor::F_1_1);
    let small = Limits {
        max_width: 50,
        ..Limits::default()
    };
    let err = decode(&jpg, &small).unwrap_err().to_string();
    assert!(err.contains("limit"), "{err}");
}

/// A textured picture: real entropy-coded data, not a flat field.
fn textured(w: u32, h: u32) -> image::RgbImage {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    image::RgbImage::from_fn(w, h, |x, y| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let n = (s >> 59) as u32;
        image::Rgb([
            ((x * 3 + n) % 256) as u8,
            ((y * 5 + x / 3) % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    })
}

fn jpeg(
    img: &image::RgbImage,
    q: u8,
    sampling: jpeg_encoder::SamplingFactor,
    restart: u16,
    gray: bool,
) -> Vec<u8> {
    let mut out = vec![];
    let mut enc = jpeg_encoder::Encoder::new(&mut out, q);
    enc.set_sampling_factor(sampling);
    if restart > 0 {
        enc.set_restart_interval(restart);
    }
    let (w, h) = (img.width() as u16, img.height() as u16);
    if gray {
        let g = image::DynamicImage::ImageRgb8(img.clone()).to_luma8();
        enc.encode(g.as_raw(), w, h, jpeg_encoder::ColorType::Luma)
    } else {
        enc.encode(img.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
    }
    .expect("encode");
    out
}

/// Every well-formed baseline JPEG walks complete (subsamplings, restart intervals, grey,
/// sizes that are not multiples of the MCU); cut ones and inflated headers do not.
#[test]
fn jpeg_scans_are_counted_against_the_header() {
    use jpeg_encoder::SamplingFactor as S;
    for (w, h) in [(96u32, 64u32), (101, 77), (333, 250)] {
        let img = textured(w, h);
        for sampling in [S::F_1_1, S::F_2_1, S::F_2_2, S::F_1_2] {
            for restart in [0u16, 1, 3, 16] {
                for gray in [false, true] {
                    for q in [40u8, 95] {
                        let ok = jpeg(&img, q, sampling, restart, gray);
                        let what = format!("{w}x{h} {sampling:?} rst {restart} gray {gray} q{q}");
                        assert_eq!(damage::jpeg_scans_complete(&ok), Ok(()), "{what}");
                        assert!(decode(&ok, &Limits::default()).is_ok(), "{what}");
                        // Cut halfway through the scan and closed with an end marker.
                        let sos = ok.windows(2).rposition(|x| x == [0xFF, 0xDA]).unwrap();
                        let mut cut = ok[..sos + (ok.len() - sos) / 2].to_vec();
                        cut.extend([0xFF, 0xD9]);
                        assert!(damage::jpeg_scans_complete(&cut).is_err(), "{what}");
                        let err = decode(&cut, &Limits::default()).unwrap_err().to_string();
                        assert!(err.contains("ends early"), "{what}: {err}");
                        let (_, dmg) = decode_lenient(&cut, &Limits::default()).unwrap();
                        assert!(dmg.is_some(), "{what}");
                        // A header that declares more rows than the scan holds.
                        let mut tall = ok.clone();
                        let sof = tall.windows(2).position(|x| x == [0xFF, 0xC0]).unwrap();
                        tall[sof + 5..sof + 7].copy_from_slice(&(2 * h as u16).to_be_bytes());
                        assert!(damage::jpeg_scans_complete(&tall).is_err(), "{what}");
                    }
                }
            }
        }
    }
}
