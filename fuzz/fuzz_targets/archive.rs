//! Fuzzes the checked archive reader: any bytes are read to the end or refused with an
//! error, never a panic, and nothing unsafe is ever handed out. The same bytes as a package
//! or policy-bundle archive are opened or refused, and as a release sent to the catalog
//! (`POST /api/v1/catalog`) read or refused, and as a backup (`maestro restore`) checked
//! against its manifest or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maestro::archive::{self, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_files: 64,
        max_file_bytes: 1 << 16,
        max_total_bytes: 1 << 18,
        max_ratio: 100,
    };
    let _ = archive::read(data, &limits, |e| {
        assert!(archive::check_path(&e.path).is_ok(), "{}", e.path);
        let mut sink = Vec::new();
        e.data.read_to_end(&mut sink)?;
        assert!(sink.len() as u64 <= e.size);
        Ok(())
    });
    if let Ok(manifest) = maestro::app::backup::check(data) {
        assert_eq!(manifest.format, maestro::app::backup::FORMAT);
        assert!(manifest.files.contains_key("maestro.redb"));
    }
    if let Ok(opened) = maestro::app::package::open(data) {
        assert!(opened.meta.check().is_ok());
        assert_eq!(opened.files.len(), opened.meta.files.len());
    }
    if let Ok(release) = maestro::app::package::Release::from_tar(data) {
        let (name, _) = release.archive().expect("a read release holds one archive");
        assert!(!name.contains('/'));
        let again = release.to_tar().expect("a read release writes back");
        assert_eq!(
            maestro::app::package::Release::from_tar(&again).expect("and reads again"),
            release
        );
    }
});
