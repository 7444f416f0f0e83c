//! GPS traces (GPX), and the split of a track into trips.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    if let Ok(track) = gpx_importer::gpx::parse(input, &mut domicile_sdk::import::refuse) {
        let _ = gpx_importer::trips(&track.points, "fuzz.gpx");
    }
});
