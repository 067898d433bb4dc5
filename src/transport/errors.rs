//! How a transport error is told: the whole chain of causes, each once.

/// The error and its sources, one after another: reqwest's own message alone rarely names the
/// cause (refused, TLS, DNS).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
