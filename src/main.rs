fn main() {
    std::process::exit(swift::run());
}
