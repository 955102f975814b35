//! What every kernel keeps per thread: whether it runs alone on its thread (a caller spreading
//! whole images over the threads, see [`on_this_thread`]) or may split its work over the rayon
//! pool, and the spare output vectors a network gives back between layers, so that none is
//! zeroed per layer.

thread_local! {
    /// Set while a caller runs a whole network on this thread (see [`on_this_thread`]).
    static ON_THIS_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work` with every kernel it calls kept on the calling thread: for callers that
/// spread whole images over the threads instead, so that no layer waits for the others.
pub fn on_this_thread<R>(work: impl FnOnce() -> R) -> R {
    let before = ON_THIS_THREAD.replace(true);
    let result = work();
    ON_THIS_THREAD.set(before);
    result
}

/// Threads a kernel may split its work over.
pub fn threads() -> usize {
    match ON_THIS_THREAD.get() {
        true => 1,
        false => rayon::current_num_threads(),
    }
}

/// The fewest items a parallel loop hands each task: all of them (no splitting) on a thread
/// that runs alone.
pub(crate) fn min_tasks() -> usize {
    match ON_THIS_THREAD.get() {
        true => usize::MAX,
        false => 1,
    }
}

thread_local! {
    /// Vectors given back by a network between layers, for the next layer's output.
    static SPARE: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many spare vectors a thread keeps: enough for every layer's output and the pieces' sums
/// of Lite0 on a single image, which with 12 made their 37 KB and 63 KB vectors anew for
/// every image.
const SPARES: usize = 24;

/// A vector of `len` values for a kernel that writes every one of them: a spare of that
/// length (with its old values, which the kernel overwrites), otherwise a new one. Zeroing a
/// new vector for every layer cost 5% of a Lite0 image. Only a spare of the same length will
/// do: a network asks for the same lengths image after image, and a longer spare shortened
/// for a shorter layer can never be lengthened again without zeroing the added part, so the
/// longer layer it was made for would make a new one, image after image (measured: Lite0's
/// 800 KB stem output, made anew for 4 images in 5 at batch 1 on 2 threads, 32 µs each).
pub(crate) fn output_buffer(len: usize) -> Vec<f32> {
    let spare = SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        let same = spare.iter().position(|v| v.len() == len);
        same.map(|i| spare.swap_remove(i))
    });
    spare.unwrap_or_else(|| vec![0.0; len])
}

/// Gives a layer's input back once the next layer has used it, for [`output_buffer`].
pub fn give_back(v: Vec<f32>) {
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        spare.push(v);
        // Keep the longest: they serve every layer.
        if spare.len() > SPARES {
            let shortest = (0..spare.len()).min_by_key(|&i| spare[i].len());
            shortest.map(|i| spare.remove(i));
        }
    });
}
