//! The trainer loop shared by finetune and dpo (issue 04).
