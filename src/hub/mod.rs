//! Hugging Face Hub and ModelScope protocols, the HF cache layout, parallel
//! resumable downloads (issue 09).
