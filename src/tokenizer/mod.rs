//! Tokenizers (tokenizer.json and GGUF vocabularies), chat templates, stop
//! handling (issue 02).
