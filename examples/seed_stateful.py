"""The seed's stateful example (mayflower-sandbox's documentation), on brig's Python package:
only the import changed, and db_pool is a URL.

    PYTHONPATH=build/python python3.11 examples/seed_stateful.py                 # default store
    PYTHONPATH=build/python python3.11 examples/seed_stateful.py sqlite:/tmp/x.db
    PYTHONPATH=build/python python3.11 examples/seed_stateful.py http://127.0.0.1:8080
"""
import asyncio
import sys

from brig.session import StatefulExecutor  # was: from mayflower_sandbox.session import StatefulExecutor

db_pool = sys.argv[1] if len(sys.argv) > 1 else None


async def main():
    # Create stateful executor
    executor = StatefulExecutor(
        db_pool=db_pool,
        thread_id="user_123",
        allow_net=False,
        timeout_seconds=120.0
    )

    # First execution - define variables and functions
    result1 = await executor.execute("""
x = 42
y = 100

def calculate():
    return x + y

print(f"Sum: {calculate()}")
""")
    print(result1.stdout)  # Output: Sum: 142

    # Second execution - state persists!
    result2 = await executor.execute("""
print(f"x is still {x}")
print(f"calculate() = {calculate()}")
x = 50  # Modify state
""")
    print(result2.stdout)
    # Output:
    # x is still 42
    # calculate() = 142

    # Third execution - modified state persists
    result3 = await executor.execute("""
print(f"x is now {x}")
print(f"calculate() = {calculate()}")
""")
    print(result3.stdout)
    # Output:
    # x is now 50
    # calculate() = 150

    # Reset session to clear all state
    await executor.reset_session()


asyncio.run(main())
