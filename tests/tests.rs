mod hostile;
mod tamper_matrix;
mod verify_support;
