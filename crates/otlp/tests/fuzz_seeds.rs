//! The fuzz targets' protobuf seeds (`fuzz/seeds/otlp_protobuf`) are the JSON fixtures in
//! protobuf form: each must decode to exactly the request its fixture decodes to, so the seeds
//! start the fuzzer from real GenAI and OpenInference traces. `UPDATE_SEEDS=1` writes the seed of
//! a new fixture.

use std::path::Path;

use evalmint_otlp::{Encoding, decode_request};

#[test]
fn each_protobuf_seed_is_its_json_fixture() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/otlp_protobuf");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut compared = 0;
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let fixture = entry.unwrap().path();
        let seed = seeds.join(fixture.with_extension("pb").file_name().unwrap());
        let json = decode_request(&std::fs::read(&fixture).unwrap(), Encoding::Json).unwrap();
        if std::env::var_os("UPDATE_SEEDS").is_some() {
            std::fs::write(&seed, prost::Message::encode_to_vec(&json)).unwrap();
        }
        let protobuf = decode_request(
            &std::fs::read(&seed).unwrap_or_else(|e| panic!("{}: {e}", seed.display())),
            Encoding::Protobuf,
        )
        .unwrap();
        assert_eq!(
            protobuf,
            json,
            "{} differs from its fixture",
            seed.display()
        );
        compared += 1;
    }
    assert!(compared >= 3, "every fixture was compared: {compared}");
}
