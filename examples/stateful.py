# The seed's stateful example. Within one execution today; across processes once sessions
# persist (`brig exec --session ID`).
x = 42
y = 100


def calculate():
    return x + y


print(f"Sum: {calculate()}")
calculate()
