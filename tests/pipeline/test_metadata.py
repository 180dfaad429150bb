"""Where ML Metadata lives: addresses, credentials from the environment only, plain messages."""

import pytest

from pipeline import metadata


def test_an_address_is_host_port_and_database():
    assert metadata.parse_mysql_address("db.example:3306/mlmd") == ("db.example", 3306, "mlmd")
    for bad in ("db.example/mlmd", "db:3306", "db:70000/mlmd", "user:pw@db:3306/mlmd", "db:3306/ml-md"):
        with pytest.raises(ValueError, match="expected HOST:PORT/DATABASE"):
            metadata.parse_mysql_address(bad)


def test_credentials_come_from_the_environment_and_never_show():
    env = {metadata.USER_ENV: "kfp", metadata.PASSWORD_ENV: "s3cret-pw"}
    config = metadata.mysql_config("127.0.0.1:3306/mlmd", env)
    assert (config.mysql.user, config.mysql.password, config.mysql.port) == ("kfp", "s3cret-pw", 3306)
    assert metadata.describe(config) == "mysql 127.0.0.1:3306/mlmd"
    with pytest.raises(metadata.MetadataUnavailable, match=f"set {metadata.USER_ENV}"):
        metadata.mysql_config("127.0.0.1:3306/mlmd", {})


def test_a_server_that_is_not_there_is_named_in_plain_words():
    from tests.ports import refusing_port

    with refusing_port() as port, pytest.raises(metadata.MetadataUnavailable) as caught:
        address = f"127.0.0.1:{port}/mlmd"
        config = metadata.mysql_config(address, {metadata.USER_ENV: "kfp", metadata.PASSWORD_ENV: "s3cret-pw"})
        metadata.check(config)
    assert f"mysql {address} cannot be opened: nothing answers on" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)


def test_sqlite_stays_the_default(tmp_path):
    path = str(tmp_path / "metadata.sqlite")
    assert metadata.check(metadata.sqlite_config(path)) == f"sqlite {path}"
    assert (tmp_path / "metadata.sqlite").exists()
