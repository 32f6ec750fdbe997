"""What the tests use that the product does not: clients that act as a browser would, and the host
snapshot root's ``./lab test`` takes before and after."""
