//! Smoke run: `cargo run --release -p hallmark-lm --example smoke -- MODEL.gguf "prompt"`.
use hallmark_lm::{GenerateOptions, LoadOptions, Model};
use hallmark_text::Sampler;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let t = std::time::Instant::now();
    let mut m = Model::load(std::path::Path::new(&args[1]), LoadOptions::default())?;
    eprintln!("load {:?}", t.elapsed());
    let p = m.prompt_ids(&args[2], false)?;
    let text = "Hello world 12345, isn't it?  New\n\nlines";
    let e = m.tokenizer().encode(text)?;
    eprintln!("{:?} {:?}", e.ids, e.offsets);
    assert_eq!(m.tokenizer().decode(&e.ids)?, text);
    let mut s = Sampler::new(None, 1);
    let g = m.generate(
        &p,
        &GenerateOptions {
            max_tokens: 60,
            temperature: 0.0,
            seed: 1,
        },
        &mut s,
    )?;
    println!(
        "{}\n-- {} tokens, model {:.0} ms, sampler {:.2} ms, ppl {:.2}",
        g.text,
        g.ids.len(),
        g.model_ms,
        g.sampler_ms,
        g.perplexity()
    );
    Ok(())
}
