#!/usr/bin/env python3
"""s3_tool.py: what the archive tests ask of the store, through boto3 (an
independent S3 client, from Debian's python3-boto3). Endpoint and keys from
S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION.

  s3_tool.py mkbucket BUCKET [lock]     create (with Object Lock) and allow anonymous reads
  s3_tool.py versions BUCKET PREFIX     "KEY VERSIONS ETAG" per key under PREFIX
  s3_tool.py delete BUCKET KEY          delete the key's every version; prints "deleted" or the error code
  s3_tool.py put BUCKET KEY FILE        put FILE's bytes at KEY (a new version); prints "put" or the error code
  s3_tool.py get BUCKET KEY FILE        write KEY's latest version to FILE
  s3_tool.py retention BUCKET KEY       "MODE UNTIL" of the latest version
  s3_tool.py shorten BUCKET KEY         try to cut the latest version's lock to a minute; "shortened" or the error code
"""
import json
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["S3_ENDPOINT"],
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
)


def code(e):
    return e.response.get("Error", {}).get("Code", "Error")


def main(argv):
    cmd = argv[1]
    if cmd == "mkbucket":
        bucket = argv[2]
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=len(argv) > 3 and argv[3] == "lock")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
                           "Resource": [f"arn:aws:s3:::{bucket}/*"]}],
        }
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        print("created")
    elif cmd == "versions":
        bucket, prefix = argv[2], argv[3]
        counts, etags = {}, {}
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for v in page.get("Versions", []):
                counts[v["Key"]] = counts.get(v["Key"], 0) + 1
                etags.setdefault(v["Key"], set()).add(v["ETag"].strip('"'))
        for k in sorted(counts):
            print(k, counts[k], len(etags[k]))
    elif cmd == "delete":
        bucket, key = argv[2], argv[3]
        try:
            vs = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
            vs = [v for v in vs if v["Key"] == key]
            if not vs:
                print("NoSuchKey")
                return
            for v in vs:
                s3.delete_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])
            print("deleted")
        except ClientError as e:
            print(code(e))
    elif cmd == "put":
        bucket, key, path = argv[2], argv[3], argv[4]
        try:
            with open(path, "rb") as f:
                s3.put_object(Bucket=bucket, Key=key, Body=f.read())
            print("put")
        except ClientError as e:
            print(code(e))
    elif cmd == "get":
        bucket, key, path = argv[2], argv[3], argv[4]
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with open(path, "wb") as f:
            f.write(body)
        print(len(body))
    elif cmd == "retention":
        bucket, key = argv[2], argv[3]
        try:
            r = s3.get_object_retention(Bucket=bucket, Key=key)["Retention"]
            print(r["Mode"], r["RetainUntilDate"].isoformat())
        except ClientError as e:
            print(code(e))
    elif cmd == "shorten":
        import datetime
        bucket, key = argv[2], argv[3]
        # A minute from now: shorter than any lock the tests set, and still
        # in the future when the gateway reads it (a date already past is
        # refused as InvalidArgument before the lock is looked at).
        soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=60)
        try:
            s3.put_object_retention(Bucket=bucket, Key=key,
                                    Retention={"Mode": "COMPLIANCE", "RetainUntilDate": soon})
            print("shortened")
        except ClientError as e:
            print(code(e))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
