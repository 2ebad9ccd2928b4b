//! `InterpreterError`: every way an invocation can fail, with the reference's codes
//! and message texts (errors.md).

use std::fmt;

/// Why an invocation failed. `code()` is the reference's `ret_code`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InterpreterError {
    /// 1: the script does not parse or validate.
    #[error("air can't be parsed:\n{0}")]
    Parse(String),
    /// 2: the data's body cannot be decoded.
    #[error("an error occurred while data deserialization: {side} data: {detail}")]
    DataDecode {
        /// Which input.
        side: DataSide,
        /// What was wrong.
        detail: String,
    },
    /// 3: the data's envelope cannot be decoded.
    #[error(
        "an error occurred while data deserialization: {side} data has no readable envelope: {detail}"
    )]
    EnvelopeDecode {
        /// Which input.
        side: DataSide,
        /// What was wrong.
        detail: String,
    },
    /// 4: the envelope is readable but the data in it is not, and its format version
    /// is not the one this interpreter reads.
    #[error(
        "an error occurred while data deserialization: {side} data: {detail}.\nbraid ({ours}) expects data of {expected} version.\nSupplied data version is {format}, it's produced by AquaVM of {interpreter} version."
    )]
    IncompatibleDataVersion {
        /// Which input.
        side: DataSide,
        /// What was wrong.
        detail: String,
        /// The data's format version.
        format: String,
        /// The interpreter version recorded in the data.
        interpreter: String,
        /// The format this interpreter reads.
        expected: &'static str,
        /// The interpreter version braid writes.
        ours: &'static str,
    },
    /// 6: the current data was written by an interpreter older than 0.61.0.
    #[error(
        "supplied data was produced by `{version}` version of interpreter, but minimum `0.61.0` version is required"
    )]
    UnsupportedInterpreterVersion {
        /// The interpreter version recorded in the data.
        version: String,
    },
    /// 7: the key is not a valid Ed25519 key in a supported format.
    #[error("malformed keypair format: {0}")]
    MalformedKeyPair(String),
    /// 8: a record in the current data does not match its content id, or refers to
    /// one the data does not hold.
    /// 9: a key is malformed, a producing peer has no key in the data, a signature is
    /// forged or from another particle, or the two data disagree on a peer's results.
    #[error("{0}")]
    Integrity(crate::integrity::IntegrityError),
    /// 10: a hard size limit was exceeded.
    #[error("{0}")]
    SizeLimit(SizeLimit),
    /// 10000–10012: an execution error no `xor` caught.
    #[error("{0}")]
    Catchable(CatchableError),
    /// 20000–20021: an error no `xor` can catch; the data is left as it was.
    #[error("{error}{}", at.as_ref().map(|a| format!(" (at {a})")).unwrap_or_default())]
    Uncatchable {
        /// What went wrong.
        error: UncatchableError,
        /// Where in the script, when known: `line:column` and the instruction.
        at: Option<String>,
    },
    /// An error that another run of this interpreter reported by its code and message
    /// only: the Wasm module's output, an invocation record. [`crate::Outcome`]s
    /// compare errors by code and message, so it equals the error it stands for.
    #[error("{message}")]
    Reported {
        /// The reference's return code.
        code: i32,
        /// The message.
        message: String,
    },
    /// 30000: some supplied call results matched no pending call.
    #[error(
        "after finishing execution of supplied AIR, there are some unprocessed call results: `{0}`, probably a wrong call_id used"
    )]
    UnprocessedCallResults(String),
}

impl InterpreterError {
    /// The reference's return code for this error.
    pub fn code(&self) -> i32 {
        match self {
            Self::Parse(_) => 1,
            Self::DataDecode { .. } => 2,
            Self::EnvelopeDecode { .. } => 3,
            Self::IncompatibleDataVersion { .. } => 4,
            Self::UnsupportedInterpreterVersion { .. } => 6,
            Self::MalformedKeyPair(_) => 7,
            Self::Integrity(e) => match e {
                crate::integrity::IntegrityError::ValueMismatch { .. }
                | crate::integrity::IntegrityError::StoreMismatch { .. }
                | crate::integrity::IntegrityError::MissingReference { .. } => 8,
                _ => 9,
            },
            Self::SizeLimit(_) => 10,
            Self::Catchable(e) => e.code(),
            Self::Uncatchable { error, .. } => error.code(),
            Self::UnprocessedCallResults(_) => 30000,
            Self::Reported { code, .. } => *code,
        }
    }
}

/// Which data input an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSide {
    /// `prev_data`.
    Prev,
    /// `data` (the current data).
    Current,
}

impl fmt::Display for DataSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Prev => "previous",
            Self::Current => "current",
        })
    }
}

/// A hard limit that was exceeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SizeLimit {
    /// The script.
    #[error("air size: {actual} bytes is bigger than the limit allowed: {limit} bytes")]
    Air {
        /// Its size.
        actual: u64,
        /// The limit.
        limit: u64,
    },
    /// The current data.
    #[error(
        "Current_data particle size: {actual} bytes is bigger than the limit allowed: {limit} bytes"
    )]
    Particle {
        /// Its size.
        actual: u64,
        /// The limit.
        limit: u64,
    },
    /// One call result.
    #[error("Call result size is bigger than the limit allowed: {limit} bytes")]
    CallResult {
        /// The limit.
        limit: u64,
    },
}

/// Errors an `xor` can catch (codes 10000–10012).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CatchableError {
    /// 10000: a service answered with an error (or with invalid JSON).
    #[error("Local service error, ret_code is {ret_code}, error message is '{message}'")]
    LocalService {
        /// The service's code.
        ret_code: i32,
        /// The service's text, verbatim.
        message: String,
    },
    /// 10001
    #[error("compared values do not match")]
    MatchValuesNotEqual,
    /// 10002
    #[error("compared values do not mismatch")]
    MismatchValuesEqual,
    /// 10003: a variable read where waiting does not apply.
    #[error("variable with name '{0}' wasn't defined during script execution")]
    VariableNotFound(String),
    /// 10005
    #[error("expression '{expression}' returned non-array value '{value}' for fold iterable")]
    FoldIteratesOverNonArray {
        /// The iterable as written (name, or lens text).
        expression: String,
        /// The value, as compact JSON.
        value: String,
    },
    /// 10006: `fail` outside any `xor`.
    #[error("fail with '{0}' is used without corresponding xor")]
    User(String),
    /// 10007: a lens could not be applied.
    #[error("{0}")]
    Lens(String),
    /// 10008: `fail` with something that is not an error object.
    #[error("{0}")]
    InvalidErrorObject(String),
    /// 10009
    #[error("variable with name '{0}' was cleared by new and then wasn't set")]
    NotInitializedAfterNew(String),
    /// 10010
    #[error(
        "the length functor could applied only to an array-like value, but it's applied to '{0}'"
    )]
    LengthOnNonArray(String),
    /// 10011
    #[error("call cannot resolve non-String triplet variable part `{name}` with value '{value}'")]
    NonStringTriplet {
        /// The variable.
        name: String,
        /// Its value, compact JSON.
        value: String,
    },
    /// 10012
    #[error("unsupported type for {0} map's key")]
    StreamMapKey(String),
}

impl CatchableError {
    /// The reference's code.
    pub fn code(&self) -> i32 {
        match self {
            Self::LocalService { .. } => 10000,
            Self::MatchValuesNotEqual => 10001,
            Self::MismatchValuesEqual => 10002,
            Self::VariableNotFound(_) => 10003,
            Self::FoldIteratesOverNonArray { .. } => 10005,
            Self::User(_) => 10006,
            Self::Lens(_) => 10007,
            Self::InvalidErrorObject(_) => 10008,
            Self::NotInitializedAfterNew(_) => 10009,
            Self::LengthOnNonArray(_) => 10010,
            Self::NonStringTriplet { .. } => 10011,
            Self::StreamMapKey(_) => 10012,
        }
    }
}

/// Errors no `xor` can catch (codes 20000–20023).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum UncatchableError {
    /// 20000: the data disagrees with the script or with itself.
    #[error("on instruction '{instruction}' trace handler encountered an error: {detail}")]
    Trace {
        /// Display form of the instruction.
        instruction: String,
        /// The conflict.
        detail: String,
    },
    /// 20003
    #[error("fold state not found for this iterable '{0}'")]
    FoldStateNotFound(String),
    /// 20004
    #[error("variable with name '{0}' can't be shadowed, shadowing isn't supported for iterables")]
    IterableShadowing(String),
    /// 20005
    #[error("multiple iterable values found for iterable name '{0}'")]
    MultipleIterableValues(String),
    /// 20006
    #[error("call result value {0} doesn't match with corresponding instruction")]
    CallResultKindMismatch(String),
    /// 20007
    #[error("trying to shadow variable '{0}', but shadowing is allowed only inside fold blocks")]
    ShadowingNotAllowed(String),
    /// 20008
    #[error("new end block tries to pop up a variable '{0}' that wasn't defined")]
    ScalarsStateCorrupted(String),
    /// 20012
    #[error("failed to deserialize to CallServiceFailed: {0}")]
    MalformedFailedResult(String),
    /// 20013
    #[error("stream size goes over the allowed limit of 1024")]
    StreamSizeLimit,
    /// 20014
    #[error("{0}")]
    StreamMapKey(&'static str),
    /// 20016
    #[error("can not find JValue to produce scalar from")]
    CanonMapToScalar,
    /// 20017
    #[error("{param} doesn't match expected parameters: expected {expected}, got {got} ")]
    ParametersMismatch {
        /// `call argument_hash`, `call tetraplet` or `canon tetraplet`.
        param: &'static str,
        /// What the data recorded.
        expected: String,
        /// What the script computes now.
        got: String,
    },
    /// 20021 (braid's own): an `ap` wrote to the name of an active fold iterator, which
    /// the reference does not survive.
    #[error("variable with name '{0}' is a fold iterator and can't be assigned by ap")]
    ApToIterator(String),
    /// 20022 (braid's own): execution nested deeper than braid supports.
    #[error("execution nested deeper than {0} levels")]
    TooDeep(usize),
    /// 20023 (braid's own): the call requests of one invocation would take more than
    /// the host's limit ([`crate::Limits::call_requests_size`]): a resource failure,
    /// like the reference running out of Wasm memory.
    #[error(
        "the call requests of this invocation take more than the limit of {limit} bytes (service id, function name, arguments and tetraplets of each)"
    )]
    CallRequestsSize {
        /// The limit.
        limit: u64,
    },
}

impl UncatchableError {
    /// The code of [`Self::CallRequestsSize`], by which a host knows the resource
    /// failure in an outcome reported by code and message alone (the Wasm module's).
    pub const CALL_REQUESTS_SIZE: i32 = 20023;

    /// The reference's code (braid's own codes above 20020 where the reference has none).
    pub fn code(&self) -> i32 {
        match self {
            Self::Trace { .. } => 20000,
            Self::FoldStateNotFound(_) => 20003,
            Self::IterableShadowing(_) => 20004,
            Self::MultipleIterableValues(_) => 20005,
            Self::CallResultKindMismatch(_) => 20006,
            Self::ShadowingNotAllowed(_) => 20007,
            Self::ScalarsStateCorrupted(_) => 20008,
            Self::MalformedFailedResult(_) => 20012,
            Self::StreamSizeLimit => 20013,
            Self::StreamMapKey(_) => 20014,
            Self::CanonMapToScalar => 20016,
            Self::ParametersMismatch { .. } => 20017,
            Self::ApToIterator(_) => 20021,
            Self::TooDeep(_) => 20022,
            Self::CallRequestsSize { .. } => Self::CALL_REQUESTS_SIZE,
        }
    }
}
