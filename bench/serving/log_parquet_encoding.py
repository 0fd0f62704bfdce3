"""CPU per row to write 100,000 logged rows (bench data, 30 features) as Parquet, by encoding option.

Usage: python log_parquet_encoding.py   (needs /tmp/loopml-bench/serving/models/X.npy from the anchor setup)
"""
import time, numpy as np, pyarrow as pa, pyarrow.parquet as pq, io
from loopml.serve._records import MatrixColumns
from loopml.predictions._schema import records_to_table
names=[f"x{i}" for i in range(30)]; index={n:i for i,n in enumerate(names)}
X=np.load("/tmp/loopml-bench/serving/models/X.npy")
n=100_000; m=X[np.arange(n)%len(X)]
b=dict(request_id=np.repeat(np.array([f"{i:032x}" for i in range(n//100)],dtype=object),100), row=np.tile(np.arange(100,dtype=np.int32), n//100),
    ts=np.full(n,time.time()), endpoint="hgb", model_name="hgb", model_version=1, latency_ms=np.random.rand(n), status=200, error=None,
    inputs=MatrixColumns(names,index,m), outputs={"predict":np.random.randint(0,2,n),"predict_proba":np.random.rand(n,2),"classes":[0,1]})
t=records_to_table(b).drop_columns(["endpoint"])
for label, kw in [("default zstd", dict(compression="zstd")), ("zstd nodict", dict(compression="zstd", use_dictionary=["request_id","model_name","error","inputs_json","outputs_json"])),
                  ("lz4", dict(compression="lz4")), ("lz4 nodict", dict(compression="lz4", use_dictionary=["request_id","model_name","error","inputs_json","outputs_json"])), ("snappy nodict", dict(compression="snappy", use_dictionary=["model_name","error"]))]:
    c=time.process_time(); s=io.BytesIO(); pq.write_table(t, s, **kw); print(label, round((time.process_time()-c)*1e6/n,2), "us/row", s.tell()//1024, "KiB")
