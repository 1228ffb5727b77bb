//! Which TensorFlow ops a scanned graph may not hold, and why: names only, no parsing.
//!
//! Sources: TensorFlow's op registry (`tensorflow/core/ops/*.cc`), `saved_model_cli scan`'s
//! denylist (`WriteFile`, `ReadFile`, `PrintV2`), protectai modelscan's `unsafe_tf_operators`
//! (`ReadFile`, `WriteFile`, `MatchingFiles`, `PyFunc`, `EagerPyFunc`, `WholeFileReader`) and
//! the TensorAbuse attack primitives (ZJU-SEC: dataset readers, `ImmutableConst`,
//! `SaveSlices`, `PrintV2` to a file, `DebugIdentityV3`, RPC and tf.data service ops).
//!
//! Deliberately allowed: `SaveV2`, `RestoreV2`, `MergeV2Checkpoints` (and V1's `Restore`,
//! `RestoreSlice`, plus `ShardedFilename`/`StringJoin` around them) form the saver graph of
//! every SavedModel, which the loader runs to restore variables from the model's own
//! `variables/` directory; rejecting them would reject every real model. Their file names are
//! graph values, so a crafted saver could point elsewhere: an open gap, shared with TensorFlow's
//! own scanner. `InitializeTableFromTextFile(V2)` reads vocabulary assets in many real NLP
//! models and is only a warning.

/// What an op does that a model must not make its loader do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Danger {
    Python,
    ReadsFiles,
    WritesFiles,
    Network,
    HiddenGraph,
}

impl Danger {
    pub fn describe(self) -> &'static str {
        match self {
            Danger::Python => "runs Python",
            Danger::ReadsFiles => "reads or lists files",
            Danger::WritesFiles => "writes files",
            Danger::Network => "opens network connections",
            Danger::HiddenGraph => "runs a graph serialized inside a tensor, which is not scanned",
        }
    }
}

/// Ops that are findings whatever their attributes.
const UNSAFE: &[(&str, Danger)] = &[
    ("PyFunc", Danger::Python),
    ("PyFuncStateless", Danger::Python),
    ("EagerPyFunc", Danger::Python),
    ("ReadFile", Danger::ReadsFiles),
    ("MatchingFiles", Danger::ReadsFiles),
    ("WholeFileReader", Danger::ReadsFiles),
    ("WholeFileReaderV2", Danger::ReadsFiles),
    ("TextLineReader", Danger::ReadsFiles),
    ("TextLineReaderV2", Danger::ReadsFiles),
    ("FixedLengthRecordReader", Danger::ReadsFiles),
    ("FixedLengthRecordReaderV2", Danger::ReadsFiles),
    ("TFRecordReader", Danger::ReadsFiles),
    ("TFRecordReaderV2", Danger::ReadsFiles),
    ("LMDBReader", Danger::ReadsFiles),
    ("TextLineDataset", Danger::ReadsFiles),
    ("FixedLengthRecordDataset", Danger::ReadsFiles),
    ("FixedLengthRecordDatasetV2", Danger::ReadsFiles),
    ("TFRecordDataset", Danger::ReadsFiles),
    ("TFRecordDatasetV2", Danger::ReadsFiles),
    ("CSVDataset", Danger::ReadsFiles),
    ("CSVDatasetV2", Danger::ReadsFiles),
    ("ExperimentalCSVDataset", Danger::ReadsFiles),
    ("LMDBDataset", Danger::ReadsFiles),
    ("ExperimentalLMDBDataset", Danger::ReadsFiles),
    ("SqlDataset", Danger::ReadsFiles),
    ("ExperimentalSqlDataset", Danger::ReadsFiles),
    ("MatchingFilesDataset", Danger::ReadsFiles),
    ("ExperimentalMatchingFilesDataset", Danger::ReadsFiles),
    ("LoadDataset", Danger::ReadsFiles),
    ("ImmutableConst", Danger::ReadsFiles),
    ("Skipgram", Danger::ReadsFiles),
    ("WriteFile", Danger::WritesFiles),
    ("Save", Danger::WritesFiles),
    ("SaveSlices", Danger::WritesFiles),
    ("CreateSummaryFileWriter", Danger::WritesFiles),
    ("CreateSummaryDbWriter", Danger::WritesFiles),
    ("DatasetToTFRecord", Danger::WritesFiles),
    ("ExperimentalDatasetToTFRecord", Danger::WritesFiles),
    ("SaveDataset", Danger::WritesFiles),
    ("SaveDatasetV2", Danger::WritesFiles),
    ("SnapshotDataset", Danger::WritesFiles),
    ("SnapshotDatasetV2", Danger::WritesFiles),
    ("DistributedSave", Danger::WritesFiles),
    ("FileSystemSetConfiguration", Danger::WritesFiles),
    ("DebugIdentity", Danger::WritesFiles),
    ("DebugIdentityV2", Danger::WritesFiles),
    ("DebugIdentityV3", Danger::WritesFiles),
    ("DebugNanCount", Danger::WritesFiles),
    ("DebugNumericSummary", Danger::WritesFiles),
    ("RpcCall", Danger::Network),
    ("RpcClient", Danger::Network),
    ("RpcServer", Danger::Network),
    ("RpcServerRegister", Danger::Network),
    ("RpcServerStart", Danger::Network),
    ("RegisterDataset", Danger::Network),
    ("RegisterDatasetV2", Danger::Network),
    ("DataServiceDataset", Danger::Network),
    ("DataServiceDatasetV2", Danger::Network),
    ("DataServiceDatasetV3", Danger::Network),
    ("DataServiceDatasetV4", Danger::Network),
    ("GcsConfigureCredentials", Danger::Network),
    ("DatasetFromGraph", Danger::HiddenGraph),
];

/// Ops that are warnings: they read files in legitimate models too.
const SUSPECT: &[(&str, Danger)] = &[
    ("InitializeTableFromTextFile", Danger::ReadsFiles),
    ("InitializeTableFromTextFileV2", Danger::ReadsFiles),
    ("CacheDataset", Danger::WritesFiles),
    ("CacheDatasetV2", Danger::WritesFiles),
];

/// Attributes read so that an op's danger can depend on them.
pub(super) const WATCHED_ATTRIBUTES: &[&str] = &["output_stream", "descriptor_source"];

/// `PrintV2` streams that are not files (`tensorflow/core/kernels/logging_ops.cc`).
const PRINT_STREAMS: &[&str] = &[
    "stderr",
    "stdout",
    "log(info)",
    "log(warning)",
    "log(error)",
];

/// How serious an op is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Unsafe(Danger),
    Suspect(Danger),
}

/// The verdict on an op, given its watched attributes' string values.
pub(super) fn judge(
    op: &[u8],
    attribute: impl Fn(&str) -> Option<Vec<Vec<u8>>>,
) -> Option<Verdict> {
    let named = |list: &[(&str, Danger)]| {
        list.iter()
            .find(|(name, _)| name.as_bytes() == op)
            .map(|(_, danger)| *danger)
    };
    if let Some(danger) = named(UNSAFE) {
        return Some(Verdict::Unsafe(danger));
    }
    if let Some(danger) = named(SUSPECT) {
        return Some(Verdict::Suspect(danger));
    }
    match op {
        // `tf.print(..., output_stream="file://...")` appends to any path.
        b"PrintV2" => {
            let to_file = attribute("output_stream").is_some_and(|values| {
                values
                    .iter()
                    .any(|v| !PRINT_STREAMS.iter().any(|s| s.as_bytes() == v.as_slice()))
            });
            to_file.then_some(Verdict::Unsafe(Danger::WritesFiles))
        }
        // A descriptor source other than the built-in pool is a file path to read.
        b"DecodeProtoV2" | b"EncodeProto" => {
            let from_file = attribute("descriptor_source").is_some_and(|values| {
                values
                    .iter()
                    .any(|v| !v.is_empty() && v.as_slice() != b"local://")
            });
            from_file.then_some(Verdict::Unsafe(Danger::ReadsFiles))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_ops_and_attributes() {
        let none = |_: &str| None;
        assert_eq!(
            judge(b"EagerPyFunc", none),
            Some(Verdict::Unsafe(Danger::Python))
        );
        assert_eq!(judge(b"SaveV2", none), None);
        assert_eq!(judge(b"RestoreV2", none), None);
        assert_eq!(judge(b"MatMul", none), None);
        assert_eq!(judge(b"PrintV2", none), None);
        let stream = |value: &'static str| {
            move |name: &str| (name == "output_stream").then(|| vec![value.as_bytes().to_vec()])
        };
        assert_eq!(judge(b"PrintV2", stream("stderr")), None);
        assert_eq!(
            judge(b"PrintV2", stream("file:///tmp/x")),
            Some(Verdict::Unsafe(Danger::WritesFiles))
        );
        assert!(matches!(
            judge(b"InitializeTableFromTextFileV2", none),
            Some(Verdict::Suspect(_))
        ));
    }
}
