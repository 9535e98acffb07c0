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
