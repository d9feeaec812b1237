"""The study note's (seed document's) examples, as users write them; used as dlcheck TARGETs.

``custom_image_loader`` reads an annotations CSV and an image folder from
``$DLCHECK_TEST_IMAGES`` (written by the test with Pillow; torchvision is not installable here,
so images are read with PIL instead of ``torchvision.io.read_image``).
"""

import csv
import itertools
import math
import os
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset, Sampler


# 2-1 CustomImageDataset --------------------------------------------------------------------
class CustomImageDataset(Dataset):
    def __init__(self, annotations_file, img_dir, transform=None, target_transform=None):
        with open(annotations_file, newline="") as f:
            self.img_labels = [row for row in csv.reader(f)]
        self.img_dir = img_dir
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self):
        return len(self.img_labels)

    def __getitem__(self, idx):
        img_path = os.path.join(self.img_dir, self.img_labels[idx][0])
        image = torch.from_numpy(np.asarray(Image.open(img_path).convert("RGB")).copy())
        label = int(self.img_labels[idx][1])
        if self.transform:
            image = self.transform(image)
        if self.target_transform:
            label = self.target_transform(label)
        return image, label


def custom_image_loader():
    root = os.environ["DLCHECK_TEST_IMAGES"]
    training_data = CustomImageDataset(os.path.join(root, "annotations.csv"), root)
    return DataLoader(training_data, batch_size=16, shuffle=True)


# 2-1 tensor CustomDataset ------------------------------------------------------------------
class CustomDataset(Dataset):
    def __init__(self, data, labels):
        self.data = data
        self.labels = labels

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        return self.data[idx], self.labels[idx]


def tensor_loader():
    data = torch.randn(100, 3, 64, 64)  # the note uses 224x224; smaller keeps the test quick
    labels = torch.randint(0, 10, (100,))
    dataset = CustomDataset(data, labels)
    return torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True)


# 2-2 real-time logs: an IterableDataset that never ends ------------------------------------
class RealTimeLogsDataset(IterableDataset):
    def __init__(self, log_source):
        self.log_source = log_source

    def __iter__(self):
        while True:
            log = self.log_source.get_new_log()
            if log is None:
                time.sleep(1)
                continue
            yield log


class LogSource:
    """The note's LogSource, fed by a generator so there is always a new log."""

    def __init__(self):
        self.logs = []
        self._gen = (torch.tensor([i, i % 7], dtype=torch.float32) for i in itertools.count())

    def add_log(self, log):
        self.logs.append(log)

    def get_new_log(self):
        if not self.logs:
            self.add_log(next(self._gen))
        if self.logs:
            return self.logs.pop(0)
        else:
            return None


log_source = LogSource()
logs_dataset = RealTimeLogsDataset(log_source)
logs_loader = torch.utils.data.DataLoader(logs_dataset, batch_size=32)


# 2-2 an IterableDataset sharded with get_worker_info ---------------------------------------
class MultiProcessIterableDataset(IterableDataset):
    def __init__(self, data):
        self.data = data

    def __iter__(self):
        worker_info = torch.utils.data.get_worker_info()
        if worker_info is None:
            iter_start = 0
            iter_end = len(self.data)
        else:
            per_worker = int(math.ceil(len(self.data) / float(worker_info.num_workers)))  # noqa: RUF046 - seed code, verbatim
            worker_id = worker_info.id
            iter_start = worker_id * per_worker
            iter_end = min(iter_start + per_worker, len(self.data))
        return iter(self.data[iter_start:iter_end])


sharded_loader = DataLoader(MultiProcessIterableDataset(range(100)), batch_size=10, num_workers=4)


# 2-3 Sampler and BatchSampler --------------------------------------------------------------
class CustomSampler(Sampler):
    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(np.random.permutation(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class ExampleDataset(Dataset):
    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        return self.data[index]


data = [i for i in range(100)]
dataset = ExampleDataset(data)
custom_sampler = CustomSampler(dataset)
sampler_loader = DataLoader(dataset, sampler=custom_sampler, batch_size=10)


class CustomBatchSampler(BatchSampler):
    def __init__(self, sampler, batch_size):
        super().__init__(sampler, batch_size, drop_last=False)

    def __iter__(self):
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if len(batch) > 0 and not self.drop_last:
            yield batch


batch_sampler = CustomBatchSampler(custom_sampler, batch_size=10)
batch_sampler_loader = DataLoader(dataset, batch_sampler=batch_sampler)

# 2-4 automatic batching disabled -----------------------------------------------------------
no_batch_loader = DataLoader(dataset, batch_size=None)


# 2-6 a custom collate_fn -------------------------------------------------------------------
def collate_fn(batch):
    return torch.stack(batch, dim=0)


collate_loader = DataLoader(
    ExampleDataset([torch.tensor([i]) for i in range(100)]),
    batch_size=10,
    num_workers=4,
    collate_fn=collate_fn,
)
