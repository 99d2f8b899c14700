//! placeholder for the simulated fleet
