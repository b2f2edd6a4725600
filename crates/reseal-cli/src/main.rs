fn main() {
    println!("reseal");
}
