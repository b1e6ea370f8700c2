"""(c) `import provgraph` time in a fresh interpreter, median of 15. Target: <= 150 ms."""

from __future__ import annotations

import statistics
import subprocess
import sys

CODE = "import time; t = time.perf_counter(); import provgraph; print(time.perf_counter() - t)"
FIRST_USE = "import time; t = time.perf_counter(); import provgraph; provgraph.run; print(time.perf_counter() - t)"


def main() -> None:
    subprocess.run([sys.executable, "-c", "import provgraph"], check=True)  # warm the bytecode cache

    def median_ms(code: str) -> float:
        runs = [
            float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(15)
        ]
        return statistics.median(runs) * 1e3

    first_use = median_ms(FIRST_USE)
    print(
        f"import provgraph: median {median_ms(CODE):.1f} ms (target <= 150 ms);"
        f" import + first use of provgraph.run: median {first_use:.1f} ms"
    )


if __name__ == "__main__":
    main()
