//! What an uploaded file is, decided by its bytes and never by its name,
//! and the copies the public may see: images are decoded and encoded anew,
//! which leaves EXIF, XMP, GPS and any other metadata behind. Pure
//! functions, no I/O.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

/// Longest side of the public copy: plenty for a phone, and a full-size
/// original stays with the staff.
pub const PUBLIC_SIDE: u32 = 1600;
/// Longest side of a thumbnail.
pub const THUMB_SIDE: u32 = 320;
/// Images larger than this in either dimension are refused before decoding
/// (a small file can declare a huge canvas).
const MAX_SIDE: u32 = 12_000;
/// What the decoder may allocate for one image.
const MAX_DECODE_BYTES: u64 = 400 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Image,
    Document,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Document => "document",
        }
    }
}

/// An accepted file type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileType {
    pub kind: Kind,
    pub mime: &'static str,
    pub ext: &'static str,
}

const JPEG: FileType = FileType { kind: Kind::Image, mime: "image/jpeg", ext: "jpg" };
const PNG: FileType = FileType { kind: Kind::Image, mime: "image/png", ext: "png" };
const WEBP: FileType = FileType { kind: Kind::Image, mime: "image/webp", ext: "webp" };
const PDF: FileType = FileType { kind: Kind::Document, mime: "application/pdf", ext: "pdf" };
const DOCX: FileType = FileType {
    kind: Kind::Document,
    mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ext: "docx",
};
const XLSX: FileType = FileType {
    kind: Kind::Document,
    mime: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ext: "xlsx",
};

/// Every type we accept; anything else is refused.
pub const ACCEPTED: [FileType; 6] = [JPEG, PNG, WEBP, PDF, DOCX, XLSX];

impl FileType {
    pub fn from_mime(mime: &str) -> Option<FileType> {
        ACCEPTED.into_iter().find(|t| t.mime == mime)
    }
}

/// The type of a file from its leading bytes (magic numbers; for Office
/// files, the names of the first entries of the zip). `None`: not accepted.
pub fn sniff(bytes: &[u8]) -> Option<FileType> {
    if infer::image::is_jpeg(bytes) {
        Some(JPEG)
    } else if infer::image::is_png(bytes) {
        Some(PNG)
    } else if infer::image::is_webp(bytes) {
        Some(WEBP)
    } else if infer::archive::is_pdf(bytes) {
        Some(PDF)
    } else if infer::doc::is_docx(bytes) {
        Some(DOCX)
    } else if infer::doc::is_xlsx(bytes) {
        Some(XLSX)
    } else {
        None
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("not an accepted file type")]
    Unsupported,
    #[error("the image cannot be decoded")]
    BadImage,
    #[error("the image is too large to process")]
    ImageTooLarge,
}

impl ContentError {
    pub fn code(&self) -> &'static str {
        match self {
            ContentError::Unsupported => "attachment.type_unsupported",
            ContentError::BadImage => "attachment.image_unreadable",
            ContentError::ImageTooLarge => "attachment.image_dimensions",
        }
    }
}

/// The copies made from an image.
#[derive(Debug)]
pub struct Derived {
    /// Re-encoded, at most [`PUBLIC_SIDE`] wide or high, no metadata.
    pub public: Vec<u8>,
    pub public_mime: &'static str,
    /// JPEG, at most [`THUMB_SIDE`].
    pub thumb: Vec<u8>,
    /// Of the original, upright.
    pub width: u32,
    pub height: u32,
}

fn format_of(t: FileType) -> Option<ImageFormat> {
    match t.mime {
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/png" => Some(ImageFormat::Png),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// Decodes an image within limits and turns it upright (phones record the
/// rotation in EXIF, which the copies no longer carry).
pub fn decode(bytes: &[u8], t: FileType) -> Result<DynamicImage, ContentError> {
    let format = format_of(t).ok_or(ContentError::Unsupported)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let too_large = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => ContentError::ImageTooLarge,
        _ => ContentError::BadImage,
    };
    let mut decoder = reader.into_decoder().map_err(too_large)?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(too_large)?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// JPEG of an image on white (JPEG has no transparency).
fn jpeg(img: &DynamicImage, quality: u8) -> Vec<u8> {
    let rgb = if img.color().has_alpha() {
        let rgba = img.to_rgba8();
        let mut rgb = image::RgbImage::new(rgba.width(), rgba.height());
        for (src, dst) in rgba.pixels().zip(rgb.pixels_mut()) {
            let a = src[3] as u32;
            for c in 0..3 {
                dst[c] = ((src[c] as u32 * a + 255 * (255 - a)) / 255) as u8;
            }
        }
        rgb
    } else {
        img.to_rgb8()
    };
    let mut out = vec![];
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    // Encoding an RGB buffer into memory cannot fail.
    rgb.write_with_encoder(enc).expect("JPEG encoding into memory");
    out
}

fn png(img: &DynamicImage) -> Vec<u8> {
    let mut out = vec![];
    let rgba = img.to_rgba8();
    rgba.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out)).expect("PNG encoding into memory");
    out
}

fn fit(img: &DynamicImage, side: u32) -> DynamicImage {
    if img.width() <= side && img.height() <= side {
        img.clone()
    } else {
        img.resize(side, side, image::imageops::FilterType::Triangle)
    }
}

/// The public copy and the thumbnail of an image. PNG stays PNG (screens
/// and drawings keep their sharp edges); everything else becomes JPEG.
pub fn derive(bytes: &[u8], t: FileType) -> Result<Derived, ContentError> {
    let img = decode(bytes, t)?;
    let public_img = fit(&img, PUBLIC_SIDE);
    let (public, public_mime) =
        if t.mime == "image/png" { (png(&public_img), "image/png") } else { (jpeg(&public_img, 85), "image/jpeg") };
    let thumb = jpeg(&public_img.thumbnail(THUMB_SIDE, THUMB_SIDE), 80);
    Ok(Derived { public, public_mime, thumb, width: img.width(), height: img.height() })
}

/// A file name that is safe to store and to send back in a header: no
/// path, no control or reserved characters, at most 80 characters, and
/// ending in the extension of what the file really is.
pub fn clean_name(raw: &str, t: FileType) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*' | ';' | '\u{202e}'))
        .collect();
    name = name.trim().trim_matches('.').trim().to_string();
    let lower = name.to_lowercase();
    let has_ext = lower.ends_with(&format!(".{}", t.ext)) || (t.ext == "jpg" && lower.ends_with(".jpeg"));
    // Keep the uploader's spelling of a right extension (`.JPG`, `.jpeg`).
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if has_ext => (name[..dot].to_string(), name[dot..].to_string()),
        _ => (name, format!(".{}", t.ext)),
    };
    let stem: String = stem.chars().take(80 - ext.chars().count()).collect();
    let stem = if stem.trim().is_empty() { "附件".to_string() } else { stem };
    format!("{stem}{ext}")
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A JPEG whose APP1 segment carries EXIF with a GPS IFD (latitude
    /// 37°54′N, longitude 112°36′E), as phones write it.
    pub fn jpeg_with_gps() -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, 128])
        }));
        crate::attachments::exif::insert_into_jpeg(&jpeg(&img, 90), 37.9, 112.6, 1)
    }

    #[test]
    fn copies_are_turned_upright() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::new(64, 48));
        // Orientation 6: the camera was held upright, the sensor sideways.
        let rotated = crate::attachments::exif::insert_into_jpeg(&jpeg(&img, 90), 37.9, 112.6, 6);
        let d = derive(&rotated, JPEG).unwrap();
        assert_eq!((d.width, d.height), (48, 64));
    }

    #[test]
    fn types_are_told_by_content_not_name() {
        assert_eq!(sniff(b"hello, this is text"), None);
        assert_eq!(sniff(b"GIF89a........"), None);
        assert_eq!(sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>"), None);
        assert_eq!(sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), Some(PDF));
        assert_eq!(sniff(&jpeg_with_gps()), Some(JPEG));
        let png_bytes = png(&DynamicImage::new_rgba8(3, 3));
        assert_eq!(sniff(&png_bytes), Some(PNG));
    }

    #[test]
    fn public_copy_drops_exif_and_gps() {
        let original = jpeg_with_gps();
        assert!(contains(&original, b"Exif\0\0"));
        let d = derive(&original, JPEG).unwrap();
        assert_eq!((d.width, d.height), (64, 48));
        assert_eq!(sniff(&d.public), Some(JPEG));
        assert_eq!(sniff(&d.thumb), Some(JPEG));
        for copy in [&d.public, &d.thumb] {
            assert!(!contains(copy, b"Exif"), "no EXIF in the copy");
            assert!(!contains(copy, b"GPS"));
        }
    }

    #[test]
    fn broken_images_are_refused() {
        let mut bytes = jpeg_with_gps();
        bytes.truncate(40);
        assert!(derive(&bytes, JPEG).is_err());
        assert_eq!(derive(b"%PDF-1.4", PDF).unwrap_err(), ContentError::Unsupported);
    }

    #[test]
    fn an_enormous_canvas_is_refused_before_decoding() {
        // A valid PNG header declaring 20000 × 20000 pixels.
        let mut out = vec![];
        let enc = image::codecs::png::PngEncoder::new(&mut out);
        let small = image::GrayImage::new(1, 1);
        small.write_with_encoder(enc).unwrap();
        // Patch the IHDR width and height (bytes 16..24) and its CRC.
        out[16..20].copy_from_slice(&20000u32.to_be_bytes());
        out[20..24].copy_from_slice(&20000u32.to_be_bytes());
        let crc = crc32(&out[12..29]);
        out[29..33].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(derive(&out, PNG).unwrap_err(), ContentError::ImageTooLarge);
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn names_are_cleaned_and_tell_the_truth() {
        assert_eq!(clean_name("../../etc/passwd", JPEG), "passwd.jpg");
        assert_eq!(clean_name("C:\\Users\\王\\现场.JPG", JPEG), "现场.JPG");
        assert_eq!(clean_name("photo.jpeg", JPEG), "photo.jpeg");
        assert_eq!(clean_name("report.txt", PDF), "report.txt.pdf");
        assert_eq!(clean_name("", PNG), "附件.png");
        assert_eq!(clean_name("a\u{0}b\r\n\"c\".pdf", PDF), "abc.pdf");
        assert_eq!(clean_name(&"长".repeat(300), PDF).chars().count(), 80);
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }
}
