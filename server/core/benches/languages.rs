//! Text analysis per language: how many texts per second the analyser reads (language detected,
//! words found, stop words dropped, stems or segments made) in each language it segments or
//! stems differently, beside English measured in the same run.
//!
//! Each language's texts are the same community post written in it (about 300 to 600 bytes),
//! in eight variants so that the per-thread stem cache sees several texts. The table at the end
//! gives texts/s, MB/s and the ratio to English; criterion then times each language. The first
//! Chinese text loads jieba's dictionary; that load is done before timing and reported apart.
//!
//! `cargo bench -p trellis-core --bench languages` (add `-- --quick` for a rougher run);
//! `TRELLIS_BENCH_PASSES` sets the passes of the table (default 200; the smoke run uses 2).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trellis_core::text::{Analyzer, Language, detect};

/// One post per language, then varied by appending a numbered closing line.
const POSTS: &[(&str, &str)] = &[
    (
        "en",
        "We moved our quantum circuits from the simulator to real hardware last month. The \
         transpiler decomposed every gate into the native set, but the two-qubit error rates \
         made the deeper circuits useless. Has anyone tried dynamical decoupling or zero-noise \
         extrapolation on the same backend? We would like to compare notes on calibration.",
    ),
    (
        "es",
        "El mes pasado llevamos nuestros circuitos cuánticos del simulador al hardware real. El \
         transpilador descompuso cada puerta en el conjunto nativo, pero las tasas de error de \
         dos cúbits hicieron inútiles los circuitos más profundos. ¿Alguien ha probado el \
         desacoplamiento dinámico en el mismo equipo? Nos gustaría comparar la calibración.",
    ),
    (
        "de",
        "Letzten Monat haben wir unsere Quantenschaltungen vom Simulator auf echte Hardware \
         gebracht. Der Transpiler hat jedes Gatter in den nativen Satz zerlegt, aber die \
         Fehlerraten der Zwei-Qubit-Gatter machten die tieferen Schaltungen unbrauchbar. Hat \
         jemand dynamische Entkopplung auf demselben System versucht? Wir würden gern die \
         Kalibrierung vergleichen.",
    ),
    (
        "ru",
        "В прошлом месяце мы перенесли наши квантовые схемы с симулятора на реальное \
         оборудование. Транспайлер разложил каждый вентиль на нативный набор, но ошибки \
         двухкубитных вентилей сделали глубокие схемы бесполезными. Кто-нибудь пробовал \
         динамическую развязку на том же устройстве? Мы хотели бы сравнить калибровку.",
    ),
    (
        "zh",
        "上个月我们把量子电路从模拟器搬到了真实硬件上。编译器把每个量子门分解成原生门集，\
         但是双量子比特门的错误率让较深的电路变得没有用处。有人在同一台设备上试过动态解耦\
         或者零噪声外推吗？我们想比较一下校准的经验。",
    ),
    (
        "ja",
        "先月、量子回路をシミュレータから実機に移しました。トランスパイラはすべてのゲートを\
         ネイティブなゲートに分解しましたが、２量子ビットゲートのエラー率のせいで深い回路は\
         使い物になりませんでした。同じ装置でダイナミカルデカップリングを試した人はいますか？\
         キャリブレーションについて情報交換したいです。",
    ),
    (
        "ko",
        "지난달 우리는 양자 회로를 시뮬레이터에서 실제 하드웨어로 옮겼습니다. 트랜스파일러는 \
         모든 게이트를 네이티브 게이트로 분해했지만 두 큐비트 게이트의 오류율 때문에 깊은 \
         회로는 쓸모가 없었습니다. 같은 장비에서 동적 디커플링을 시도해 본 사람이 있나요? \
         보정에 대한 경험을 나누고 싶습니다.",
    ),
];

const VARIANTS: usize = 8;

fn texts(post: &str) -> Vec<String> {
    (0..VARIANTS).map(|n| format!("{post}\n#{n}")).collect()
}

/// Texts per second of `analyse` over `passes` passes of `texts`.
fn rate<T>(texts: &[String], passes: usize, analyse: impl Fn(&str) -> T) -> f64 {
    let started = Instant::now();
    for _ in 0..passes {
        for text in texts {
            black_box(analyse(black_box(text)));
        }
    }
    (passes * texts.len()) as f64 / started.elapsed().as_secs_f64()
}

fn languages(c: &mut Criterion) {
    let analyzer = Analyzer::new();
    let started = Instant::now();
    black_box(analyzer.tokens("上个月我们把量子电路从模拟器搬到了真实硬件上。"));
    eprintln!(
        "jieba's dictionary loaded on the first Chinese text in {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let corpora: Vec<(&str, Vec<String>)> = POSTS
        .iter()
        .map(|(code, post)| (*code, texts(post)))
        .collect();
    for (code, texts) in &corpora {
        let detected = detect(&texts[0]).language.code();
        assert_eq!(detected, *code, "the {code} post is detected as {detected}");
    }
    let passes = std::env::var("TRELLIS_BENCH_PASSES")
        .ok()
        .and_then(|passes| passes.parse().ok())
        .unwrap_or(200);
    // Warm each language once, then measure them side by side.
    for (_, texts) in &corpora {
        rate(texts, 5, |text| analyzer.tokens(text));
    }
    let rates: Vec<(&str, f64, usize)> = corpora
        .iter()
        .map(|(code, texts)| {
            let bytes = texts.iter().map(String::len).sum::<usize>() / texts.len();
            (
                *code,
                rate(texts, passes, |text| analyzer.tokens(text)),
                bytes,
            )
        })
        .collect();
    let english = rates[0].1;
    // What detection costs: English again, read as English without detecting it.
    let given = rate(&corpora[0].1, passes, |text| {
        analyzer.tokens_in(text, Language::ENGLISH)
    });
    eprintln!("\n| language | bytes/text | texts/s | MB/s | against English |");
    eprintln!("|---|---|---|---|---|");
    for (code, rate, bytes) in &rates {
        eprintln!(
            "| {code} | {bytes} | {rate:.0} | {:.1} | {:.2}x |",
            rate * *bytes as f64 / 1e6,
            rate / english
        );
    }
    eprintln!(
        "| en, language given (no detection) | {} | {given:.0} | {:.1} | {:.2}x |",
        rates[0].2,
        given * rates[0].2 as f64 / 1e6,
        given / english
    );
    eprintln!();

    let mut group = c.benchmark_group("analysis");
    group.measurement_time(Duration::from_secs(3));
    for (code, texts) in &corpora {
        group.throughput(Throughput::Elements(texts.len() as u64));
        group.bench_function(*code, |b| {
            b.iter(|| {
                for text in texts {
                    black_box(analyzer.tokens(black_box(text)));
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, languages);
criterion_main!(benches);
