//! A minimal EXIF writer: an APP1 segment with a GPS position and an
//! orientation, as a phone camera writes them. The demo's photos and the
//! tests use it to have originals that really carry location metadata.

/// An APP1 `Exif` segment (marker included): IFD0 with Orientation and a
/// pointer to a GPS IFD holding latitude and longitude in degrees (north
/// and east positive).
pub fn segment(lat: f64, lon: f64, orientation: u16) -> Vec<u8> {
    // TIFF, big-endian. Offsets count from the TIFF header.
    let mut t: Vec<u8> = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&kind.to_be_bytes());
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(&value);
    };
    const BYTE: u16 = 1;
    const ASCII: u16 = 2;
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    const RATIONAL: u16 = 5;
    // IFD0 at 8: two entries → 2 + 24 + 4 = 30 bytes; the GPS IFD at 38
    // has five → 2 + 60 + 4 = 66 bytes; the rationals follow at 104.
    let gps_ifd: u32 = 8 + 30;
    let lat_at: u32 = gps_ifd + 66;
    let lon_at: u32 = lat_at + 24;
    t.extend_from_slice(&2u16.to_be_bytes());
    let o = orientation.to_be_bytes();
    entry(&mut t, 0x0112, SHORT, 1, [o[0], o[1], 0, 0]);
    entry(&mut t, 0x8825, LONG, 1, gps_ifd.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&5u16.to_be_bytes());
    entry(&mut t, 0x0000, BYTE, 4, [2, 3, 0, 0]);
    entry(&mut t, 0x0001, ASCII, 2, [if lat >= 0.0 { b'N' } else { b'S' }, 0, 0, 0]);
    entry(&mut t, 0x0002, RATIONAL, 3, lat_at.to_be_bytes());
    entry(&mut t, 0x0003, ASCII, 2, [if lon >= 0.0 { b'E' } else { b'W' }, 0, 0, 0]);
    entry(&mut t, 0x0004, RATIONAL, 3, lon_at.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    for v in [lat.abs(), lon.abs()] {
        let deg = v.trunc();
        let min = ((v - deg) * 60.0).trunc();
        let sec_x100 = (((v - deg) * 60.0 - min) * 60.0 * 100.0).round();
        for (num, den) in [(deg as u32, 1u32), (min as u32, 1), (sec_x100 as u32, 100)] {
            t.extend_from_slice(&num.to_be_bytes());
            t.extend_from_slice(&den.to_be_bytes());
        }
    }
    let mut seg = vec![0xff, 0xe1];
    seg.extend_from_slice(&((t.len() + 8) as u16).to_be_bytes());
    seg.extend_from_slice(b"Exif\0\0");
    seg.extend_from_slice(&t);
    seg
}

/// The JPEG with an EXIF segment right after its start-of-image marker.
pub fn insert_into_jpeg(jpeg: &[u8], lat: f64, lon: f64, orientation: u16) -> Vec<u8> {
    assert!(jpeg.starts_with(&[0xff, 0xd8]), "a JPEG");
    let mut out = jpeg[..2].to_vec();
    out.extend(segment(lat, lon, orientation));
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_segment_is_well_formed() {
        let s = super::segment(37.9, 112.6, 1);
        assert_eq!(&s[..2], &[0xff, 0xe1]);
        let len = u16::from_be_bytes([s[2], s[3]]) as usize;
        assert_eq!(len + 2, s.len());
        assert_eq!(&s[4..10], b"Exif\0\0");
        // TIFF header + IFD0 (30) + GPS IFD (66) + 6 rationals (48).
        assert_eq!(s.len() - 10, 8 + 30 + 66 + 48);
    }
}
