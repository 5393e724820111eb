//! [`Communicator`] over MPI (the `mpi` cargo feature): `mpirun -n K mlp train …` trains one
//! model in K processes, on one machine or many.
//!
//! The sums are `MPI_Allreduce`, as in Horovod and PyTorch DDP's MPI backend; the library
//! underneath is Open MPI (or any MPI the `mpi` crate finds), so transports, host files and
//! process placement are `mpirun`'s business.

use std::cell::RefCell;

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator as _, CommunicatorCollectives, Root};

use crate::train::comm::Communicator;

/// The processes started by one `mpirun`.
pub struct Mpi {
    // Dropped last: finalises MPI.
    _universe: Universe,
    world: SimpleCommunicator,
    f32s: RefCell<Vec<f32>>,
    f64s: RefCell<Vec<f64>>,
}

impl Mpi {
    /// Starts MPI (once per process). Without `mpirun` this is a group of one.
    ///
    /// `None` if MPI was already started in this process.
    pub fn start() -> Option<Self> {
        let universe = mpi::initialize()?;
        let world = universe.world();
        Some(Self {
            _universe: universe,
            world,
            f32s: RefCell::new(Vec::new()),
            f64s: RefCell::new(Vec::new()),
        })
    }

    /// Processes on this machine in this run, from Open MPI's or MPICH's environment (1 if
    /// neither says): the CPU cores are shared among them.
    pub fn local_size() -> usize {
        ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
            .iter()
            .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(1)
    }
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn sum_f32(&self, values: &mut [f32]) {
        // Nothing to sum (every process has as many values): two empty slices share their
        // dangling address, which MPI refuses as the same send and receive buffer.
        if values.is_empty() {
            return;
        }
        // MPI needs separate send and receive buffers; this one is reused between steps.
        let mut send = self.f32s.borrow_mut();
        send.clear();
        send.extend_from_slice(values);
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn sum_f64(&self, values: &mut [f64]) {
        if values.is_empty() {
            return;
        }
        let mut send = self.f64s.borrow_mut();
        send.clear();
        send.extend_from_slice(values);
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) {
        let root = self.world.process_at_rank(root as i32);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        // Every process knows the length now: nothing more to send when it is 0 (an empty
        // buffer is a dangling pointer, which MPI may refuse).
        if len > 0 {
            root.broadcast_into(&mut bytes[..]);
        }
    }
}
