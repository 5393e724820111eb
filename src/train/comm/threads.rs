//! Threads of one process standing in for the processes of a group ([`super::Communicator`]
//! for tests of data-parallel training without MPI).

use std::sync::{Arc, Barrier, Mutex};

use super::Communicator;

struct Shared {
    barrier: Barrier,
    f32s: Mutex<Vec<Vec<f32>>>,
    f64s: Mutex<Vec<Vec<f64>>>,
    bytes: Mutex<Vec<u8>>,
}

/// One member of a group of threads.
pub struct ThreadRank {
    rank: usize,
    size: usize,
    shared: Arc<Shared>,
}

/// A group of `size` members, to be moved into one thread each.
pub fn group(size: usize) -> Vec<ThreadRank> {
    let shared = Arc::new(Shared {
        barrier: Barrier::new(size),
        f32s: Mutex::new(vec![Vec::new(); size]),
        f64s: Mutex::new(vec![Vec::new(); size]),
        bytes: Mutex::new(Vec::new()),
    });
    (0..size)
        .map(|rank| ThreadRank {
            rank,
            size,
            shared: Arc::clone(&shared),
        })
        .collect()
}

fn sum<T: Copy + std::ops::AddAssign>(
    me: &ThreadRank,
    slots: &Mutex<Vec<Vec<T>>>,
    values: &mut [T],
) {
    slots.lock().unwrap()[me.rank] = values.to_vec();
    me.shared.barrier.wait();
    {
        let slots = slots.lock().unwrap();
        values.copy_from_slice(&slots[0]);
        for other in &slots[1..] {
            for (v, &o) in values.iter_mut().zip(other) {
                *v += o;
            }
        }
    }
    // Nobody writes the next sum's slot before everyone has read this one.
    me.shared.barrier.wait();
}

impl Communicator for ThreadRank {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn sum_f32(&self, values: &mut [f32]) {
        sum(self, &self.shared.f32s, values);
    }

    fn sum_f64(&self, values: &mut [f64]) {
        sum(self, &self.shared.f64s, values);
    }

    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) {
        if self.rank == root {
            *self.shared.bytes.lock().unwrap() = bytes.clone();
        }
        self.shared.barrier.wait();
        if self.rank != root {
            *bytes = self.shared.bytes.lock().unwrap().clone();
        }
        self.shared.barrier.wait();
    }
}
