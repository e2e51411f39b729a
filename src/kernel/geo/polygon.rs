//! Validated grid boundaries.
//!
//! A [`GridPolygon`] is the boundary of a grid (网格): a GeoJSON Polygon or
//! MultiPolygon with `[longitude, latitude]` positions in WGS84 / CGCS2000
//! (the two differ by centimetres, far below what a grid boundary needs).
//! Values exist only after validation, so code that receives one can compute
//! areas and run point-in-polygon tests without further checks.
//!
//! Pure: no I/O. Geometry comes from the `geo` crate; GeoJSON parsing and
//! output from the `geojson` crate.

use std::ops::RangeInclusive;

use geo::algorithm::orient::Direction;
use geo::algorithm::validation::{InvalidMultiPolygon, InvalidPolygon, RingRole};
use geo::{
    Area, BooleanOps, BoundingRect, Centroid, Contains, Coord, Covers, GeodesicArea, InteriorPoint, LineString,
    MultiPolygon, Orient, Point, Polygon, Validation,
};
use geojson::{GeoJson, GeometryValue, Position};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Longitudes accepted: mainland China, Hainan and the South China Sea
/// islands lie between about 73.5°E and 135.1°E.
pub const LON_RANGE: RangeInclusive<f64> = 73.0..=136.0;

/// Latitudes accepted: from about 3.8°N (曾母暗沙) to 53.6°N (漠河).
pub const LAT_RANGE: RangeInclusive<f64> = 3.0..=54.0;

/// The most positions a boundary may have, over all its rings. Grid
/// boundaries are drawn by hand or simplified from survey data and need far
/// fewer. The cap bounds the cost of validation: geo's self-intersection
/// check compares every pair of edges, and a 5 000-point ring takes about
/// 0.13 s in a release build (several seconds unoptimized).
pub const MAX_POSITIONS: usize = 5_000;

/// Why a boundary was rejected. [`PolygonError::code`] gives a stable
/// machine code for the message catalogue; `Display` is English for logs.
///
/// Rings are numbered per polygon: ring 0 is the exterior, ring 1 the first
/// hole, and so on. Polygons are numbered within a MultiPolygon, from 0.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PolygonError {
    #[error("not a valid GeoJSON geometry: {0}")]
    BadGeoJson(String),
    #[error("expected a Polygon or MultiPolygon, got {0}")]
    UnsupportedType(String),
    #[error("the geometry contains no polygon")]
    Empty,
    #[error("polygon {polygon} ring {ring} needs 3 distinct points and the closing one")]
    TooFewPoints { polygon: usize, ring: usize },
    #[error("polygon {polygon} ring {ring} is not closed: its first and last positions differ")]
    NotClosed { polygon: usize, ring: usize },
    #[error("position ({lon}, {lat}) lies outside China (longitude 73..136, latitude 3..54)")]
    OutOfRange { lon: f64, lat: f64 },
    #[error("the boundary has {count} positions, more than the {max} allowed")]
    TooManyPoints { count: usize, max: usize },
    #[error("polygon {polygon} ring {ring} intersects itself")]
    SelfIntersection { polygon: usize, ring: usize },
    #[error("polygon {polygon}: hole (ring {ring}) is not inside the exterior ring")]
    HoleOutside { polygon: usize, ring: usize },
    #[error("polygon {polygon}: rings {first} and {second} cross or share an edge")]
    RingsIntersect { polygon: usize, first: usize, second: usize },
    #[error("polygons {first} and {second} overlap")]
    Overlap { first: usize, second: usize },
    #[error("polygons {first} and {second} share an edge; draw them as one polygon")]
    SharedEdge { first: usize, second: usize },
    #[error("the boundary encloses no area")]
    Degenerate,
}

impl PolygonError {
    /// Every machine code that [`PolygonError::code`] can return.
    pub const ALL_CODES: &'static [&'static str] = &[
        "polygon.bad_geojson",
        "polygon.unsupported_type",
        "polygon.empty",
        "polygon.too_few_points",
        "polygon.not_closed",
        "polygon.out_of_range",
        "polygon.too_many_points",
        "polygon.self_intersection",
        "polygon.hole_outside",
        "polygon.rings_intersect",
        "polygon.overlap",
        "polygon.shared_edge",
        "polygon.degenerate",
    ];

    /// A stable machine-readable code, e.g. `"polygon.self_intersection"`.
    pub fn code(&self) -> &'static str {
        match self {
            PolygonError::BadGeoJson(_) => "polygon.bad_geojson",
            PolygonError::UnsupportedType(_) => "polygon.unsupported_type",
            PolygonError::Empty => "polygon.empty",
            PolygonError::TooFewPoints { .. } => "polygon.too_few_points",
            PolygonError::NotClosed { .. } => "polygon.not_closed",
            PolygonError::OutOfRange { .. } => "polygon.out_of_range",
            PolygonError::TooManyPoints { .. } => "polygon.too_many_points",
            PolygonError::SelfIntersection { .. } => "polygon.self_intersection",
            PolygonError::HoleOutside { .. } => "polygon.hole_outside",
            PolygonError::RingsIntersect { .. } => "polygon.rings_intersect",
            PolygonError::Overlap { .. } => "polygon.overlap",
            PolygonError::SharedEdge { .. } => "polygon.shared_edge",
            PolygonError::Degenerate => "polygon.degenerate",
        }
    }
}

/// Rings as plain `(lon, lat)` lists, before any validation.
type RawPolygon = Vec<Vec<(f64, f64)>>;

/// A validated grid boundary: one or more non-overlapping polygons, each
/// with closed, simple rings inside China and holes inside their exterior.
///
/// Rings are stored in the RFC 7946 orientation (exterior counter-clockwise,
/// holes clockwise) whatever the input used. Serde reads and writes the
/// GeoJSON geometry object, validating on the way in.
#[derive(Debug, Clone, PartialEq)]
pub struct GridPolygon {
    shape: MultiPolygon<f64>,
}

impl GridPolygon {
    /// Parses a GeoJSON Polygon or MultiPolygon, given as a bare geometry
    /// object or as a Feature wrapping one, and validates it.
    ///
    /// Positions may carry a third value (altitude); it is dropped.
    pub fn from_geojson(value: &serde_json::Value) -> Result<GridPolygon, PolygonError> {
        let geojson = GeoJson::deserialize(value).map_err(|e| PolygonError::BadGeoJson(e.to_string()))?;
        let geometry = match geojson {
            GeoJson::Geometry(geometry) => geometry,
            GeoJson::Feature(feature) => feature.geometry.ok_or(PolygonError::Empty)?,
            GeoJson::FeatureCollection(_) => return Err(PolygonError::UnsupportedType("FeatureCollection".into())),
        };
        let polygons = match &geometry.value {
            GeometryValue::Polygon { coordinates } => vec![raw_polygon(coordinates)?],
            GeometryValue::MultiPolygon { coordinates } => {
                coordinates.iter().map(|polygon| raw_polygon(polygon)).collect::<Result<_, _>>()?
            }
            other => return Err(PolygonError::UnsupportedType(other.type_name().into())),
        };
        GridPolygon::from_raw(polygons)
    }

    /// Builds a boundary from one exterior ring of `(lon, lat)` points, for
    /// generated data. The ring is closed automatically if its last point is
    /// not its first.
    pub fn from_exterior(mut points: Vec<(f64, f64)>) -> Result<GridPolygon, PolygonError> {
        if points.first() != points.last() {
            points.push(points[0]);
        }
        GridPolygon::from_raw(vec![vec![points]])
    }

    /// The axis-aligned rectangle between two corners, for generated data.
    ///
    /// # Panics
    ///
    /// If the rectangle is empty (`min >= max`) or not inside China; use
    /// [`GridPolygon::try_from_rect`] for untrusted input.
    pub fn from_rect(min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> GridPolygon {
        GridPolygon::try_from_rect(min_lon, min_lat, max_lon, max_lat)
            .unwrap_or_else(|e| panic!("invalid grid rectangle: {e}"))
    }

    /// Like [`GridPolygon::from_rect`], but returns an error instead of
    /// panicking.
    pub fn try_from_rect(min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> Result<GridPolygon, PolygonError> {
        // Written so that NaN also fails.
        if !(min_lon < max_lon && min_lat < max_lat) {
            return Err(PolygonError::Degenerate);
        }
        GridPolygon::from_exterior(vec![(min_lon, min_lat), (max_lon, min_lat), (max_lon, max_lat), (min_lon, max_lat)])
    }

    /// Runs every check on raw rings and builds the value.
    fn from_raw(polygons: Vec<RawPolygon>) -> Result<GridPolygon, PolygonError> {
        if polygons.is_empty() {
            return Err(PolygonError::Empty);
        }
        let count: usize = polygons.iter().flatten().map(Vec::len).sum();
        if count > MAX_POSITIONS {
            return Err(PolygonError::TooManyPoints { count, max: MAX_POSITIONS });
        }
        // The cheap structural checks come first, ring by ring, so that the
        // error names the first problem a person would see. geo closes
        // rings silently, so closure must be checked before converting.
        for (p, rings) in polygons.iter().enumerate() {
            if rings.is_empty() {
                return Err(PolygonError::TooFewPoints { polygon: p, ring: 0 });
            }
            for (r, ring) in rings.iter().enumerate() {
                if ring.len() < 4 {
                    return Err(PolygonError::TooFewPoints { polygon: p, ring: r });
                }
                if let Some(&(lon, lat)) =
                    ring.iter().find(|(lon, lat)| !LON_RANGE.contains(lon) || !LAT_RANGE.contains(lat))
                {
                    return Err(PolygonError::OutOfRange { lon, lat });
                }
                if ring.first() != ring.last() {
                    return Err(PolygonError::NotClosed { polygon: p, ring: r });
                }
            }
        }
        let shape = MultiPolygon::new(
            polygons
                .into_iter()
                .map(|rings| {
                    let mut rings = rings
                        .into_iter()
                        .map(|ring| LineString::new(ring.into_iter().map(|(x, y)| Coord { x, y }).collect()));
                    let exterior = rings.next().expect("checked above: at least one ring");
                    Polygon::new(exterior, rings.collect())
                })
                .collect(),
        );
        shape.check_validation().map_err(map_invalid)?;
        // Validation rejects collapsed rings in practice; this guards the
        // area-based code against anything it lets through.
        if shape.iter().any(|polygon| polygon.unsigned_area() <= 0.0) {
            return Err(PolygonError::Degenerate);
        }
        Ok(GridPolygon { shape: shape.orient(Direction::Default) })
    }

    /// The GeoJSON geometry object: a Polygon when there is one part, a
    /// MultiPolygon otherwise.
    pub fn to_geojson(&self) -> serde_json::Value {
        let value = match self.shape.0.as_slice() {
            [polygon] => GeometryValue::from(polygon),
            _ => GeometryValue::from(&self.shape),
        };
        serde_json::to_value(geojson::Geometry::new(value)).expect("a geometry of finite numbers serializes")
    }

    /// The area on the WGS84 ellipsoid in square metres (Karney's geodesic
    /// algorithm), holes excluded.
    pub fn area_m2(&self) -> f64 {
        self.shape.geodesic_area_unsigned()
    }

    /// True when the point lies strictly inside the boundary (not on an
    /// edge, not in a hole). See [`GridPolygon::covers`] for the inclusive
    /// test.
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        self.shape.contains(&Point::new(lon, lat))
    }

    /// True when the point lies inside the boundary or on an edge. A point
    /// on an edge shared by two neighbouring grids is covered by both.
    pub fn covers(&self, lon: f64, lat: f64) -> bool {
        self.shape.covers(&Point::new(lon, lat))
    }

    /// `(min_lon, min_lat, max_lon, max_lat)`.
    pub fn bbox(&self) -> (f64, f64, f64, f64) {
        let rect = self.shape.bounding_rect().expect("a validated boundary is not empty");
        (rect.min().x, rect.min().y, rect.max().x, rect.max().y)
    }

    /// The area-weighted centroid `(lon, lat)`, computed in degrees (plenty
    /// for grid-sized shapes). It may fall outside a concave or multi-part
    /// boundary; use [`GridPolygon::interior_point`] to place a label.
    pub fn centroid(&self) -> (f64, f64) {
        let point = self.shape.centroid().expect("a validated boundary is not empty");
        (point.x(), point.y())
    }

    /// A point `(lon, lat)` guaranteed to lie inside the boundary, for
    /// placing a label or a marker.
    pub fn interior_point(&self) -> (f64, f64) {
        let point = self.shape.interior_point().expect("a validated boundary is not empty");
        (point.x(), point.y())
    }

    /// The number of polygons (parts).
    pub fn part_count(&self) -> usize {
        self.shape.0.len()
    }

    /// The underlying `geo` geometry, for further computations.
    pub fn as_multi_polygon(&self) -> &MultiPolygon<f64> {
        &self.shape
    }
}

/// The area in square metres that two boundaries share (0 for neighbours
/// that only touch along an edge). Used to check that grids tile their
/// community without overlapping.
///
/// geo's boolean operations snap coordinates to a fixed-point grid, so the
/// result can be off by a few parts per million of the shapes' size (about
/// 2 m² for a 1° × 0.0001° strip): compare with a tolerance, such as
/// "less than 1 m²" for "no overlap".
pub fn overlap_area_m2(a: &GridPolygon, b: &GridPolygon) -> f64 {
    a.shape.intersection(&b.shape).geodesic_area_unsigned()
}

impl Serialize for GridPolygon {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_geojson().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for GridPolygon {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        GridPolygon::from_geojson(&value).map_err(serde::de::Error::custom)
    }
}

/// Converts GeoJSON rings to `(lon, lat)` lists, dropping any altitude.
fn raw_polygon(rings: &[Vec<Position>]) -> Result<RawPolygon, PolygonError> {
    rings
        .iter()
        .map(|ring| {
            ring.iter()
                .map(|position| match position.as_slice() {
                    [lon, lat, ..] => Ok((*lon, *lat)),
                    _ => Err(PolygonError::BadGeoJson("a position needs a longitude and a latitude".into())),
                })
                .collect()
        })
        .collect()
}

/// The ring number used in [`PolygonError`]: 0 for the exterior, i + 1 for
/// hole i.
fn ring_number(role: RingRole) -> usize {
    match role {
        RingRole::Exterior => 0,
        RingRole::Interior(i) => i + 1,
    }
}

/// Maps geo's first validation problem to our error.
fn map_invalid(invalid: InvalidMultiPolygon) -> PolygonError {
    match invalid {
        InvalidMultiPolygon::InvalidPolygon(index, problem) => {
            let polygon = index.0;
            match problem {
                InvalidPolygon::TooFewPointsInRing(role) => {
                    PolygonError::TooFewPoints { polygon, ring: ring_number(role) }
                }
                InvalidPolygon::SelfIntersection(role) => {
                    PolygonError::SelfIntersection { polygon, ring: ring_number(role) }
                }
                // Ranges were checked before, so this is unreachable in
                // practice; NaN is outside any range anyway.
                InvalidPolygon::NonFiniteCoord(..) => PolygonError::OutOfRange { lon: f64::NAN, lat: f64::NAN },
                InvalidPolygon::InteriorRingNotContainedInExteriorRing(role) => {
                    PolygonError::HoleOutside { polygon, ring: ring_number(role) }
                }
                InvalidPolygon::IntersectingRingsOnALine(first, second)
                | InvalidPolygon::IntersectingRingsOnAnArea(first, second) => {
                    PolygonError::RingsIntersect { polygon, first: ring_number(first), second: ring_number(second) }
                }
            }
        }
        InvalidMultiPolygon::ElementsOverlaps(first, second) => {
            PolygonError::Overlap { first: first.0, second: second.0 }
        }
        InvalidMultiPolygon::ElementsTouchOnALine(first, second) => {
            PolygonError::SharedEdge { first: first.0, second: second.0 }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::winding_order::{Winding, WindingOrder};
    use geo::ChamberlainDuquetteArea;
    use proptest::prelude::*;
    use serde_json::json;

    /// Taiyuan, 迎泽区 area.
    const LON: f64 = 112.6;
    const LAT: f64 = 37.9;

    fn square(lon: f64, lat: f64, size: f64) -> serde_json::Value {
        json!([[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]])
    }

    fn polygon(rings: Vec<serde_json::Value>) -> serde_json::Value {
        json!({ "type": "Polygon", "coordinates": rings })
    }

    fn parse(value: serde_json::Value) -> Result<GridPolygon, PolygonError> {
        GridPolygon::from_geojson(&value)
    }

    fn error_code(value: serde_json::Value) -> &'static str {
        parse(value).unwrap_err().code()
    }

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= expected.abs() * tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    /// The area of a 0.01° × 0.01° cell with its south-west corner at
    /// (112.6E, 37.9N), from the ellipsoid's radii of curvature at 37.905°N:
    /// one degree of longitude is 87 950 m there and one of latitude
    /// 110 995 m, so the cell is 879.5 m × 1 110.0 m = 976 200 m². (Not
    /// 1.1e6 m²: a degree of longitude shrinks with cos(latitude).)
    const TAIYUAN_CELL_M2: f64 = 976_200.0;

    #[test]
    fn square_near_taiyuan_has_the_expected_area() {
        let grid = parse(polygon(vec![square(LON, LAT, 0.01)])).unwrap();
        assert_close(grid.area_m2(), TAIYUAN_CELL_M2, 0.01);
        // The spherical approximation agrees within a percent.
        assert_close(grid.as_multi_polygon().chamberlain_duquette_unsigned_area(), grid.area_m2(), 0.01);
        assert_eq!(grid.part_count(), 1);
    }

    #[test]
    fn contains_covers_bbox_and_centroid() {
        let grid = parse(polygon(vec![square(LON, LAT, 0.01)])).unwrap();
        assert!(grid.contains(LON + 0.005, LAT + 0.005));
        assert!(!grid.contains(LON + 0.02, LAT + 0.005));
        assert!(!grid.contains(LON - 0.000_001, LAT + 0.005));
        // Boundary points: not contained, but covered.
        assert!(!grid.contains(LON, LAT + 0.005));
        assert!(grid.covers(LON, LAT + 0.005));
        assert!(!grid.covers(LON - 0.001, LAT));

        let (min_lon, min_lat, max_lon, max_lat) = grid.bbox();
        assert_eq!((min_lon, min_lat), (LON, LAT));
        assert_close(max_lon, LON + 0.01, 1e-12);
        assert_close(max_lat, LAT + 0.01, 1e-12);
        let (c_lon, c_lat) = grid.centroid();
        assert_close(c_lon, LON + 0.005, 1e-9);
        assert_close(c_lat, LAT + 0.005, 1e-9);
        let (i_lon, i_lat) = grid.interior_point();
        assert!(grid.contains(i_lon, i_lat));
    }

    #[test]
    fn accepts_a_feature_and_a_multipolygon() {
        let feature = json!({
            "type": "Feature",
            "properties": { "name": "第一网格" },
            "geometry": polygon(vec![square(LON, LAT, 0.01)]),
        });
        let from_feature = parse(feature).unwrap();
        let bare = parse(polygon(vec![square(LON, LAT, 0.01)])).unwrap();
        assert_eq!(from_feature, bare);

        let multi = json!({
            "type": "MultiPolygon",
            "coordinates": [[square(LON, LAT, 0.01)], [square(LON + 0.02, LAT, 0.01)]],
        });
        let grid = parse(multi).unwrap();
        assert_eq!(grid.part_count(), 2);
        assert_close(grid.area_m2(), 2.0 * bare.area_m2(), 1e-3);
        assert!(grid.contains(LON + 0.025, LAT + 0.005));
        assert!(!grid.contains(LON + 0.015, LAT + 0.005));
        assert_eq!(grid.to_geojson()["type"], "MultiPolygon");
    }

    #[test]
    fn altitude_is_dropped() {
        let ring = json!([
            [LON, LAT, 800.0],
            [LON + 0.01, LAT, 800.0],
            [LON + 0.01, LAT + 0.01, 805.0],
            [LON, LAT + 0.01, 801.0],
            [LON, LAT, 800.0]
        ]);
        let grid = parse(polygon(vec![ring])).unwrap();
        let expected = parse(polygon(vec![square(LON, LAT, 0.01)])).unwrap();
        assert_eq!(grid, expected);
    }

    #[test]
    fn closed_and_unclosed_rings() {
        assert!(parse(polygon(vec![square(LON, LAT, 0.01)])).is_ok());
        let open = json!([[LON, LAT], [LON + 0.01, LAT], [LON + 0.01, LAT + 0.01], [LON, LAT + 0.01]]);
        assert_eq!(parse(polygon(vec![open])).unwrap_err(), PolygonError::NotClosed { polygon: 0, ring: 0 });
        // A triangle: 3 distinct points plus the closing one is enough.
        let triangle = json!([[LON, LAT], [LON + 0.01, LAT], [LON, LAT + 0.01], [LON, LAT]]);
        assert!(parse(polygon(vec![triangle])).is_ok());
    }

    #[test]
    fn too_few_points() {
        let short = json!([[LON, LAT], [LON + 0.01, LAT], [LON, LAT]]);
        assert_eq!(error_code(polygon(vec![short])), "polygon.too_few_points");
        // Four positions but only two distinct points.
        let repeated = json!([[LON, LAT], [LON + 0.01, LAT], [LON + 0.01, LAT], [LON, LAT]]);
        assert_eq!(error_code(polygon(vec![repeated])), "polygon.too_few_points");
        assert_eq!(error_code(polygon(vec![])), "polygon.too_few_points");
        assert_eq!(error_code(polygon(vec![json!([])])), "polygon.too_few_points");
    }

    #[test]
    fn bow_tie_is_rejected() {
        let bow_tie = json!([[LON, LAT], [LON + 0.01, LAT + 0.01], [LON + 0.01, LAT], [LON, LAT + 0.01], [LON, LAT]]);
        assert_eq!(parse(polygon(vec![bow_tie])).unwrap_err(), PolygonError::SelfIntersection { polygon: 0, ring: 0 });
        let points = vec![(LON, LAT), (LON + 0.01, LAT + 0.01), (LON + 0.01, LAT), (LON, LAT + 0.01)];
        assert_eq!(GridPolygon::from_exterior(points).unwrap_err().code(), "polygon.self_intersection");
    }

    #[test]
    fn spikes_and_collinear_rings_are_rejected() {
        // A spike going out and back along the same line.
        let spike = json!([[LON, LAT], [LON + 0.02, LAT], [LON + 0.01, LAT], [LON, LAT + 0.01], [LON, LAT]]);
        assert_eq!(error_code(polygon(vec![spike])), "polygon.self_intersection");
        let flat = vec![(LON, LAT), (LON + 0.01, LAT), (LON + 0.02, LAT), (LON + 0.03, LAT)];
        assert!(GridPolygon::from_exterior(flat).is_err());
    }

    #[test]
    fn coordinates_must_lie_in_china() {
        for (lon, lat) in [(0.0, 0.0), (LAT, LON), (140.0, 35.0), (100.0, 60.0), (100.0, 2.0)] {
            let ring = json!([[lon, lat], [LON + 0.01, LAT], [LON + 0.01, LAT + 0.01], [lon, lat]]);
            assert_eq!(parse(polygon(vec![ring])).unwrap_err(), PolygonError::OutOfRange { lon, lat },);
        }
        // The corners of the accepted range are fine.
        assert!(GridPolygon::try_from_rect(73.0, 3.0, 136.0, 54.0).is_ok());
        let err = GridPolygon::from_exterior(vec![(f64::NAN, LAT), (LON, LAT), (LON, LAT + 1.0)]).unwrap_err();
        assert_eq!(err.code(), "polygon.out_of_range");
    }

    #[test]
    fn holes() {
        let outer = square(LON, LAT, 0.03);
        // A clockwise hole in the middle.
        let hole = json!([
            [LON + 0.01, LAT + 0.01],
            [LON + 0.01, LAT + 0.02],
            [LON + 0.02, LAT + 0.02],
            [LON + 0.02, LAT + 0.01],
            [LON + 0.01, LAT + 0.01]
        ]);
        let with_hole = parse(polygon(vec![outer.clone(), hole])).unwrap();
        let solid = parse(polygon(vec![outer.clone()])).unwrap();
        assert_close(with_hole.area_m2(), solid.area_m2() * 8.0 / 9.0, 1e-3);
        assert!(!with_hole.contains(LON + 0.015, LAT + 0.015));
        assert!(with_hole.contains(LON + 0.005, LAT + 0.015));

        let outside = square(LON + 0.05, LAT, 0.01);
        assert_eq!(
            parse(polygon(vec![outer.clone(), outside])).unwrap_err(),
            PolygonError::HoleOutside { polygon: 0, ring: 1 }
        );
        let straddling = square(LON + 0.025, LAT + 0.01, 0.01);
        assert_eq!(error_code(polygon(vec![outer.clone(), straddling])), "polygon.hole_outside");
        // Two holes that overlap each other.
        let hole_a = square(LON + 0.005, LAT + 0.005, 0.01);
        let hole_b = square(LON + 0.01, LAT + 0.01, 0.01);
        assert_eq!(
            parse(polygon(vec![outer, hole_a, hole_b])).unwrap_err(),
            PolygonError::RingsIntersect { polygon: 0, first: 1, second: 2 }
        );
    }

    #[test]
    fn multipolygon_parts_must_not_overlap() {
        let overlapping = json!({
            "type": "MultiPolygon",
            "coordinates": [[square(LON, LAT, 0.02)], [square(LON + 0.01, LAT + 0.01, 0.02)]],
        });
        assert_eq!(parse(overlapping).unwrap_err(), PolygonError::Overlap { first: 0, second: 1 });
        let nested = json!({
            "type": "MultiPolygon",
            "coordinates": [[square(LON, LAT, 0.03)], [square(LON + 0.01, LAT + 0.01, 0.01)]],
        });
        assert_eq!(error_code(nested), "polygon.overlap");
        let sharing_an_edge = json!({
            "type": "MultiPolygon",
            "coordinates": [[square(LON, LAT, 0.01)], [square(LON + 0.01, LAT, 0.01)]],
        });
        assert_eq!(error_code(sharing_an_edge), "polygon.shared_edge");
        // Touching at a single corner is allowed.
        let corner = json!({
            "type": "MultiPolygon",
            "coordinates": [[square(LON, LAT, 0.01)], [square(LON + 0.01, LAT + 0.01, 0.01)]],
        });
        assert!(parse(corner).is_ok());
        let empty = json!({ "type": "MultiPolygon", "coordinates": [] });
        assert_eq!(error_code(empty), "polygon.empty");
    }

    #[test]
    fn rejects_other_geojson() {
        assert_eq!(error_code(json!({ "type": "Point", "coordinates": [LON, LAT] })), "polygon.unsupported_type");
        assert_eq!(
            error_code(json!({
                "type": "LineString",
                "coordinates": [[LON, LAT], [LON + 0.01, LAT]]
            })),
            "polygon.unsupported_type"
        );
        assert_eq!(error_code(json!({ "type": "FeatureCollection", "features": [] })), "polygon.unsupported_type");
        assert_eq!(error_code(json!({ "type": "Feature", "properties": {}, "geometry": null })), "polygon.empty");
        for bad in [
            json!(null),
            json!("Polygon"),
            json!({}),
            json!({ "type": "Polygon" }),
            json!({ "type": "Polygon", "coordinates": "none" }),
            json!({ "type": "Polygon", "coordinates": [[["112.6", "37.9"]]] }),
            json!({ "type": "Circle", "coordinates": [] }),
        ] {
            assert_eq!(error_code(bad.clone()), "polygon.bad_geojson", "{bad}");
        }
        let one_number = polygon(vec![json!([[LON], [LON + 0.01, LAT], [LON, LAT + 0.01], [LON]])]);
        assert_eq!(error_code(one_number), "polygon.bad_geojson");
    }

    #[test]
    fn too_many_points() {
        // A circle of MAX_POSITIONS points plus the closing one.
        let ring: Vec<(f64, f64)> = (0..MAX_POSITIONS)
            .map(|i| {
                let angle = i as f64 / MAX_POSITIONS as f64 * std::f64::consts::TAU;
                (LON + 0.01 * angle.cos(), LAT + 0.01 * angle.sin())
            })
            .collect();
        assert_eq!(
            GridPolygon::from_exterior(ring.clone()).unwrap_err(),
            PolygonError::TooManyPoints { count: MAX_POSITIONS + 1, max: MAX_POSITIONS }
        );
        // The same circle with a tenth of the points is fine. (Validating a
        // ring near the cap takes seconds in an unoptimized build, so the
        // test stays below it.)
        let sparse: Vec<(f64, f64)> = ring.iter().step_by(10).copied().collect();
        let grid = GridPolygon::from_exterior(sparse).unwrap();
        assert!(grid.contains(LON, LAT));
    }

    #[test]
    fn rectangles() {
        let rect = GridPolygon::from_rect(LON, LAT, LON + 0.01, LAT + 0.01);
        let parsed = parse(polygon(vec![square(LON, LAT, 0.01)])).unwrap();
        assert_eq!(rect.bbox(), parsed.bbox());
        assert_close(rect.area_m2(), parsed.area_m2(), 1e-9);
        for (a, b, c, d) in [
            (LON, LAT, LON, LAT + 0.01),
            (LON, LAT, LON + 0.01, LAT),
            (LON + 0.01, LAT, LON, LAT + 0.01),
            (f64::NAN, LAT, LON, LAT + 0.01),
        ] {
            assert_eq!(GridPolygon::try_from_rect(a, b, c, d).unwrap_err(), PolygonError::Degenerate);
        }
        assert_eq!(GridPolygon::try_from_rect(10.0, 10.0, 11.0, 11.0).unwrap_err().code(), "polygon.out_of_range");
    }

    #[test]
    #[should_panic(expected = "invalid grid rectangle")]
    fn from_rect_panics_on_bad_input() {
        GridPolygon::from_rect(LON, LAT, LON - 0.01, LAT + 0.01);
    }

    #[test]
    fn output_is_rfc7946_and_round_trips() {
        // Clockwise exterior, counter-clockwise hole: the wrong way round.
        let clockwise = json!([[LON, LAT], [LON, LAT + 0.03], [LON + 0.03, LAT + 0.03], [LON + 0.03, LAT], [LON, LAT]]);
        let hole = square(LON + 0.01, LAT + 0.01, 0.01);
        let grid = parse(polygon(vec![clockwise, hole])).unwrap();
        let shape = grid.as_multi_polygon();
        assert_eq!(shape.0[0].exterior().winding_order(), Some(WindingOrder::CounterClockwise));
        assert_eq!(shape.0[0].interiors()[0].winding_order(), Some(WindingOrder::Clockwise));

        let output = grid.to_geojson();
        assert_eq!(output["type"], "Polygon");
        assert_eq!(output["coordinates"].as_array().unwrap().len(), 2);
        assert_eq!(GridPolygon::from_geojson(&output).unwrap(), grid);

        // Serde uses the same GeoJSON.
        let json = serde_json::to_value(&grid).unwrap();
        assert_eq!(json, output);
        let back: GridPolygon = serde_json::from_value(json).unwrap();
        assert_eq!(back, grid);
        let err =
            serde_json::from_value::<GridPolygon>(json!({ "type": "Point", "coordinates": [LON, LAT] })).unwrap_err();
        assert!(err.to_string().contains("Polygon or MultiPolygon"), "{err}");
    }

    #[test]
    fn overlap_area() {
        let a = GridPolygon::from_rect(LON, LAT, LON + 0.01, LAT + 0.01);
        let neighbour = GridPolygon::from_rect(LON + 0.01, LAT, LON + 0.02, LAT + 0.01);
        let far = GridPolygon::from_rect(LON + 0.05, LAT, LON + 0.06, LAT + 0.01);
        let half = GridPolygon::from_rect(LON + 0.005, LAT, LON + 0.015, LAT + 0.01);
        assert!(overlap_area_m2(&a, &neighbour) < 1.0);
        assert_eq!(overlap_area_m2(&a, &far), 0.0);
        assert_close(overlap_area_m2(&a, &half), a.area_m2() / 2.0, 1e-3);
        assert_close(overlap_area_m2(&a, &a), a.area_m2(), 1e-6);
        assert_close(overlap_area_m2(&half, &a), overlap_area_m2(&a, &half), 1e-9);
    }

    #[test]
    fn every_error_code_is_listed_and_unique() {
        let errors = [
            PolygonError::BadGeoJson(String::new()),
            PolygonError::UnsupportedType(String::new()),
            PolygonError::Empty,
            PolygonError::TooFewPoints { polygon: 0, ring: 0 },
            PolygonError::NotClosed { polygon: 0, ring: 0 },
            PolygonError::OutOfRange { lon: 0.0, lat: 0.0 },
            PolygonError::TooManyPoints { count: 0, max: 0 },
            PolygonError::SelfIntersection { polygon: 0, ring: 0 },
            PolygonError::HoleOutside { polygon: 0, ring: 1 },
            PolygonError::RingsIntersect { polygon: 0, first: 1, second: 2 },
            PolygonError::Overlap { first: 0, second: 1 },
            PolygonError::SharedEdge { first: 0, second: 1 },
            PolygonError::Degenerate,
        ];
        let codes: Vec<&str> = errors.iter().map(PolygonError::code).collect();
        assert_eq!(codes, PolygonError::ALL_CODES);
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
    }

    /// A random rectangle inside the accepted range: a corner, then a width
    /// and height from about 10 m to 1°.
    fn rectangle() -> impl Strategy<Value = (f64, f64, f64, f64)> {
        (73.0..135.0f64, 3.0..53.0f64, 1e-4..1.0f64, 1e-4..1.0f64)
            .prop_map(|(lon, lat, w, h)| (lon, lat, lon + w, lat + h))
    }

    proptest! {
        #[test]
        fn rectangles_in_china_validate((min_lon, min_lat, max_lon, max_lat) in rectangle()) {
            let grid = GridPolygon::try_from_rect(min_lon, min_lat, max_lon, max_lat).unwrap();
            let area = grid.area_m2();
            prop_assert!(area > 0.0);
            // A rectangle of w° × h° is at most w·h·111.4 km² (a degree is at
            // most 111.4 km) and at least w·h·(111 km)·(111 km·cos 54°).
            let degrees2 = (max_lon - min_lon) * (max_lat - min_lat);
            prop_assert!(area <= degrees2 * 111_400.0 * 111_400.0);
            prop_assert!(area >= degrees2 * 110_500.0 * 110_500.0 * 0.58);
            prop_assert_eq!(grid.bbox(), (min_lon, min_lat, max_lon, max_lat));
            let (lon, lat) = grid.centroid();
            prop_assert!(grid.contains(lon, lat));
            prop_assert!(!grid.contains(max_lon + 0.1, lat));
            let round_trip = GridPolygon::from_geojson(&grid.to_geojson()).unwrap();
            prop_assert_eq!(&round_trip, &grid);
            // The boolean operations snap to a fixed-point grid, which costs
            // up to a few parts per million on long thin shapes.
            let overlap = overlap_area_m2(&grid, &round_trip);
            prop_assert!((overlap - area).abs() <= area * 1e-4);
            // The same rectangle moved east by its width only touches it.
            let width = max_lon - min_lon;
            if let Ok(east) = GridPolygon::try_from_rect(max_lon, min_lat, max_lon + width, max_lat) {
                prop_assert!(overlap_area_m2(&grid, &east) < 1.0);
            }
        }

        #[test]
        fn random_rings_never_panic(
            points in prop::collection::vec((112.0..113.0f64, 37.0..38.0f64), 0..12),
        ) {
            // Whatever comes out, a success satisfies the invariants.
            if let Ok(grid) = GridPolygon::from_exterior(points) {
                prop_assert!(grid.area_m2() > 0.0);
                let (lon, lat) = grid.interior_point();
                prop_assert!(grid.covers(lon, lat));
                let exterior = grid.as_multi_polygon().0[0].exterior();
                prop_assert_eq!(exterior.winding_order(), Some(WindingOrder::CounterClockwise));
            }
        }
    }
}
