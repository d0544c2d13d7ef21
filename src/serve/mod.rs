//! The OpenAI-compatible server (issue 03).
